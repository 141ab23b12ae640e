"""The side digest: ``NAME.sha256`` beside a checkpoint, in ``sha256sum``'s format.

Checkpoints we write carry it (computed from the bytes while they are written, see
:func:`resnest_mm.utils.fileio.atomic_write_bytes`), so ``sha256sum -c`` checks them too. Every
load verifies it when it is there; the zip records' CRC-32 (:mod:`.zip_records`) is the check
that travels with the file when the digest does not. Both files are checked to be regular files
within a size limit before they are opened (a FIFO or a link to ``/dev/zero`` is refused, not
read for ever).
"""
from __future__ import annotations

import re
from typing import Optional

from ..errors import ExplainedFileNotFoundError
from ..fileio import DIGEST_SUFFIX, stream_sha256
from ..safe_open import UnsafeFileError, open_regular_file, read_regular_file
from .errors import CheckpointError, CheckpointNotFoundError
from .limits import CheckpointLimits
from .stop_during_load import stop_during_load


def digest_path(path: str) -> str:
    """Where the SHA-256 of the checkpoint at ``path`` is kept."""
    return path + DIGEST_SUFFIX


def read_digest(path: str, limits: Optional[CheckpointLimits] = None) -> Optional[str]:
    """The recorded SHA-256 of ``path`` (hex), or None when it has no digest file.

    Raises:
        CheckpointError: the digest file is not a regular file, too large, unreadable, or
            holds no SHA-256.
    """
    limits = limits or CheckpointLimits.from_env()
    try:
        text = read_regular_file(digest_path(path), limits.digest_bytes, 'digest file')
    except ExplainedFileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise CheckpointError(f'{digest_path(path)} cannot be read as a digest ({exc}); delete '
                              f'it if {path} is trusted, or use another checkpoint') from None
    match = re.match(rb'\s*([0-9a-fA-F]{64})\b', text)
    if match is None:
        raise CheckpointError(f'{digest_path(path)} is not a SHA-256 digest file; delete it if '
                              f'{path} is trusted, or use another checkpoint')
    return match.group(1).decode().lower()


def checkpoint_file_error(exc: Exception) -> CheckpointError:
    """A :class:`CheckpointError` with the sentence of a refused checkpoint file (a FIFO, a
    device, a folder, too large, unreadable) or a missing one."""
    if isinstance(exc, ExplainedFileNotFoundError):
        return CheckpointNotFoundError(f'{exc}: check the path given to load_from, --resume or the '
                               'checkpoint argument')
    return CheckpointError(str(exc))


def file_sha256(path: str, limits: Optional[CheckpointLimits] = None) -> str:
    """SHA-256 of a checkpoint's bytes, read in chunks once it is known to be a regular file.

    Raises:
        CheckpointError: not a regular file, too large, missing or unreadable.
    """
    limits = limits or CheckpointLimits.from_env()
    try:
        with open_regular_file(path, limits.file_bytes, 'checkpoint') as f:
            return stream_sha256(f)
    except (ExplainedFileNotFoundError, UnsafeFileError) as exc:
        raise checkpoint_file_error(exc) from None


def damaged_digest_error(path: str, found: str, expected: str) -> CheckpointError:
    """The sentence for bytes that differ from the recorded digest."""
    return CheckpointError(
        f'{path} is damaged: its SHA-256 is {found}, but {digest_path(path)} recorded '
        f'{expected} when it was written. It is not used; resume from an earlier '
        'checkpoint (tools/train.py CONFIG --resume picks the newest one that verifies) '
        'or restore the file from a copy.')


def verify(path: str, limits: Optional[CheckpointLimits] = None) -> bool:
    """Check ``path`` against its digest file: True when verified, False when it has none.

    Raises:
        CheckpointError: the bytes differ from the recorded digest, or either file is not a
            regular file within its size limit.
    """
    with stop_during_load(path):  # hashing a large file takes a while
        expected = read_digest(path, limits)
        if expected is None:
            return False
        found = file_sha256(path, limits)
    if found != expected:
        raise damaged_digest_error(path, found, expected)
    return True
