"""Engine components registered in scope resnest_mm: hooks, loops, optimizers, wrappers."""
from .hooks import ApexAmpHook, CheckpointAdapterHook, RunSummaryHook, ThroughputHook
from .optimizers import ApexAmpOptimWrapper, build_npu_fused_sgd
from .runner import ResumableEpochBasedTrainLoop

__all__ = ['ApexAmpHook', 'ApexAmpOptimWrapper', 'CheckpointAdapterHook', 'RunSummaryHook',
           'ResumableEpochBasedTrainLoop', 'ThroughputHook', 'build_npu_fused_sgd']
