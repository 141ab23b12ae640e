"""Engine components registered in scope resnest_mm: the runner, loops, hooks, optimizers,
wrappers."""
from .hooks import ApexAmpHook, CheckpointAdapterHook, RunSummaryHook, ThroughputHook
from .loops import ResumableEpochBasedTrainLoop
from .optimizers import ApexAmpOptimWrapper, CpuAmpOptimWrapper, build_npu_fused_sgd
from .runner import ResNeStRunner

__all__ = ['ApexAmpHook', 'ApexAmpOptimWrapper', 'CheckpointAdapterHook', 'CpuAmpOptimWrapper',
           'ResNeStRunner', 'RunSummaryHook', 'ResumableEpochBasedTrainLoop', 'ThroughputHook',
           'build_npu_fused_sgd']
