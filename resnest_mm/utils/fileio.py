"""File writing that never leaves a half-written file behind, and says when the disk is full."""
from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
from typing import IO, Callable, Optional

import torch

from .errors import ExplainedError
from .safe_open import file_kind

DIGEST_SUFFIX = '.sha256'
_CHUNK = 16 << 20
# "no space", "quota exceeded", "file too large" (RLIMIT_FSIZE): each means no room for the file
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def stream_sha256(stream: IO[bytes]) -> str:
    """SHA-256 (hex) of the bytes left in an open binary file, read in 16 MiB chunks: the one
    such loop of the package (checkpoints, downloads). ``hashlib.file_digest`` does the same
    from Python 3.11; this package still supports 3.9."""
    sha = hashlib.sha256()
    for chunk in iter(lambda: stream.read(_CHUNK), b''):
        sha.update(chunk)
    return sha.hexdigest()


class DiskFullError(ExplainedError, OSError):
    """A file could not be written for lack of space; its partial copy is already removed."""

    def __init__(self, path: str, needed: Optional[int], free: int) -> None:
        need = f'it needs {needed:,} bytes and ' if needed else ''
        super().__init__(f'no space left to write {path}: {need}{free:,} bytes are free on its '
                         'disk; the unfinished file was removed')
        self.path, self.needed, self.free = path, needed, free


class UnwritableError(ExplainedError, OSError):
    """A file could not be written: a folder stands where it goes, or its folder cannot be
    written (read-only, no permission); nothing of it is left behind."""


def check_writable_folder(folder: str, what: str, files: tuple = ()) -> None:
    """Refuse, in one sentence, a ``folder`` that cannot take files (not a folder, read-only,
    no permission), or in which one of ``files`` (names) is there but not a regular file: a
    folder; a FIFO or a device (Python's ``open(path, 'w')``, mmengine's way of writing
    ``last_checkpoint``, blocks on a FIFO for ever); or a symbolic link (``open`` would write
    through it, over whatever file it points to).

    Args:
        folder: The folder (it exists).
        what: What it is, for the message (``'the work dir'``).
        files: Names of files that will be written into it.

    Raises:
        UnwritableError: naming the folder or the file, and what to do.
    """
    if not os.path.isdir(folder):
        raise UnwritableError(f'{what} {folder} is not a folder: remove that file or choose '
                              'another place')
    try:
        fd, probe = tempfile.mkstemp(prefix='.write-test.', suffix='.part', dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise UnwritableError(f'{what} {folder} cannot be written ({exc.strerror}): make it '
                              'writable, or choose another place') from None
    for name in files:
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            raise UnwritableError(f'{path} is a folder where a file of the run goes: move or '
                                  'remove that folder, or choose another place')
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            kind = f'a symbolic link to {os.path.realpath(path)}'
        elif not stat.S_ISREG(mode):
            kind = file_kind(mode)
        else:
            continue
        raise UnwritableError(f'{path} is {kind} where a file of the run goes: move or remove '
                              'it, or choose another place')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _free_bytes(folder: str) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def fsync_dir(folder: str) -> None:
    """Flush a folder's entries (a rename inside it) to the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[IO[bytes]], None],
                 size: Optional[int] = None) -> None:
    """Call ``write`` on a temporary file in the target folder, then rename it over ``path``.

    A reader never sees a half-written file, and a crash leaves the old file intact. When the
    disk is full the temporary file is removed at once.

    Args:
        path: The file to (re)place.
        write: Writes the content into the open binary file it is given.
        size: The number of bytes, when known, for the disk-full message.

    Raises:
        DiskFullError: no space (or quota, or file-size limit) for the file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UnwritableError(f'{path} is a folder, so the file cannot be written there: move or '
                              'remove that folder')
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.part',
                                   dir=folder)
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise DiskFullError(path, size, _free_bytes(folder)) from None
        raise UnwritableError(f'{path} cannot be written: {folder} refuses new files '
                              f'({exc.strerror}); make it writable, or write elsewhere') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise DiskFullError(path, size, _free_bytes(folder)) from None
        if isinstance(exc, OSError) and exc.errno in (errno.EISDIR, errno.ENOTEMPTY,
                                                      errno.EROFS, errno.EACCES, errno.EPERM):
            raise UnwritableError(f'{path} cannot be written ({exc.strerror}); the unfinished '
                                  'file was removed. Make its folder writable and the name '
                                  'free, or write elsewhere') from None
        raise


def atomic_write_bytes(path: str, data: bytes, digest: bool = False) -> Optional[str]:
    """Write ``data`` with :func:`atomic_write`; with ``digest``, hash the bytes as they are
    written and record the SHA-256 in ``path + '.sha256'`` (``sha256sum`` format), written the
    same way once the file is in place.

    Returns:
        The hex digest when ``digest``, else None.
    """
    sha = hashlib.sha256() if digest else None

    def write(f: IO[bytes]) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            chunk = view[start:start + _CHUNK]
            if sha is not None:
                sha.update(chunk)
            f.write(chunk)

    atomic_write(path, write, size=len(data))
    if sha is None:
        return None
    hexdigest = sha.hexdigest()
    line = f'{hexdigest}  {os.path.basename(path)}\n'.encode()
    atomic_write(path + DIGEST_SUFFIX, lambda f: f.write(line), size=len(line))
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return hexdigest


def atomic_save(obj: object, path: str, digest: bool = False) -> Optional[str]:
    """``torch.save`` through :func:`atomic_write_bytes` (with its digest when asked)."""
    with io.BytesIO() as buffer:
        torch.save(obj, buffer)
        return atomic_write_bytes(path, buffer.getvalue(), digest=digest)
