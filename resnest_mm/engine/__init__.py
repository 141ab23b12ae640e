"""Engine components (hooks ...) registered in scope resnest_mm."""
from .hooks import CheckpointAdapterHook, RunSummaryHook, ThroughputHook

__all__ = ['CheckpointAdapterHook', 'RunSummaryHook', 'ThroughputHook']
