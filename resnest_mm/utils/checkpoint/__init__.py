"""Checkpoints read as data: bounded, interruptible, integrity-checked (see :mod:`.reader`)."""
from .digest import digest_path, file_sha256, read_digest, verify
from .errors import CheckpointError, CheckpointLoadInterruptedError
from .fit import check_fits
from .limits import CheckpointLimits
from .message_hub import plain_message_hub, restore_message_hub
from .reader import load_checkpoint_file

__all__ = [
    'CheckpointError', 'CheckpointLimits', 'CheckpointLoadInterruptedError', 'check_fits',
    'digest_path', 'file_sha256', 'load_checkpoint_file', 'plain_message_hub', 'read_digest',
    'restore_message_hub', 'verify'
]
