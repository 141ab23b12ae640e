"""Where a run is and how it continues: the resumable loop, the run state, RNG capture and
restore, the training checkpoints (listing, verifying, pruning, the shared save), stopping at
a signal, and resuming in one call.

Imports neither ``engine.hooks`` nor ``engine.runner`` (mmengine's direction: the runner imports
hooks and loops, hooks import loops, nothing here imports them back).
"""
from .bare_model import bare_model
from .checkpoints import (
    LAST_CHECKPOINT,
    CheckpointList,
    checkpoint_folder,
    checkpoint_hook,
    last_checkpoint,
    record_saved,
    save_training_checkpoint,
)
from .resumable_train_loop import ResumableEpochBasedTrainLoop
from .resume import AUTO, resume
from .rng import capture_random_state, restore_random_state, stateful_augments
from .run_state import RunState, recorded_position
from .stop import HOOK_METHOD, STOP_KEY, StoppedBySignalError, exit_status, stop

__all__ = ['AUTO', 'HOOK_METHOD', 'LAST_CHECKPOINT', 'STOP_KEY', 'CheckpointList',
           'ResumableEpochBasedTrainLoop', 'RunState', 'StoppedBySignalError', 'bare_model',
           'capture_random_state', 'checkpoint_folder', 'checkpoint_hook', 'exit_status',
           'last_checkpoint', 'record_saved', 'recorded_position', 'restore_random_state',
           'resume', 'save_training_checkpoint', 'stateful_augments', 'stop']
