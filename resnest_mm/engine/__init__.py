"""Engine components registered in scope resnest_mm: hooks, optimizers, optimizer wrappers."""
from .hooks import ApexAmpHook, CheckpointAdapterHook, RunSummaryHook, ThroughputHook
from .optimizers import ApexAmpOptimWrapper, build_npu_fused_sgd

__all__ = ['ApexAmpHook', 'ApexAmpOptimWrapper', 'CheckpointAdapterHook', 'RunSummaryHook',
           'ThroughputHook', 'build_npu_fused_sgd']
