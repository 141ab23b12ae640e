from ..loops import (
    ResumableEpochBasedTrainLoop,
    RunState,
    StoppedBySignalError,
    capture_random_state,
    restore_random_state,
)
from .resnest_runner import ResNeStRunner

# the loop, run state and RNG functions live in engine/loops; kept importable from here
__all__ = ['ResNeStRunner', 'ResumableEpochBasedTrainLoop', 'RunState', 'StoppedBySignalError',
           'capture_random_state', 'restore_random_state']
