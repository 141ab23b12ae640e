from .resumable_train_loop import (
    ResumableEpochBasedTrainLoop,
    capture_random_state,
    restore_random_state,
)

__all__ = ['ResumableEpochBasedTrainLoop', 'capture_random_state', 'restore_random_state']
