"""Where checkpoints are read: the public names, kept here for the code that imports them.

The reader lives in :mod:`resnest_mm.utils.checkpoint`, one component per file: the file and
size checks (:mod:`resnest_mm.utils.safe_open`), the side digest, the zip records and their
CRC-32, the scan of the pickle, the restricted unpickler and its data types, the stop signals
during a load, the message hub's plain form, and the fit of weights to a model. Writing is
:func:`resnest_mm.utils.fileio.atomic_write_bytes` (atomic, digest, disk full).
"""
from .checkpoint import (
    CheckpointError,
    CheckpointLimits,
    CheckpointLoadInterruptedError,
    check_fits,
    digest_path,
    file_sha256,
    load_checkpoint_file,
    plain_message_hub,
    read_digest,
    restore_message_hub,
    verify,
)

__all__ = [
    'CheckpointError', 'CheckpointLimits', 'CheckpointLoadInterruptedError', 'check_fits',
    'digest_path', 'file_sha256', 'load_checkpoint_file', 'plain_message_hub', 'read_digest',
    'restore_message_hub', 'verify'
]
