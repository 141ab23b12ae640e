from .resnest_runner import ResNeStRunner, StoppedBySignalError
from .resumable_train_loop import ResumableEpochBasedTrainLoop
from .run_state import RunState, capture_random_state, restore_random_state

__all__ = ['ResNeStRunner', 'ResumableEpochBasedTrainLoop', 'RunState', 'StoppedBySignalError',
           'capture_random_state', 'restore_random_state']
