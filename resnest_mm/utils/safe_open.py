"""Open a file from disk only once it is known to be a regular file of a bounded size.

What Python's ``open`` lacks for files a user (or an attacker) put on disk: opening a FIFO
blocks until someone writes into it, a character device such as ``/dev/zero`` (or a link to
it) reads for ever, a folder fails with an ``IsADirectoryError`` that names no role, and a
file of many gigabytes is read into memory whole. Here each file is ``stat``-ed first (links
followed) and refused in one sentence unless it is a regular file of at most ``max_bytes``; it
is then opened non-blocking and checked again on the open descriptor, so a file swapped in
between is refused too, and reading stops at ``max_bytes`` even when the file grows meanwhile.

Used for checkpoints and their digests; meant for every file the project reads (images, label
lists, meta files).
"""
from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
from typing import BinaryIO, Callable, Optional, TextIO

from .errors import ExplainedError, ExplainedFileNotFoundError

_KINDS = (
    (stat.S_ISFIFO, 'a FIFO (named pipe)'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISSOCK, 'a socket'),
    (stat.S_ISDIR, 'a folder'),
)
_CHUNK = 16 << 20


class UnsafeFileError(ExplainedError, OSError):
    """A path that must not be opened or read: not a regular file, too large, or unreadable."""


def file_kind(mode: int) -> str:
    """What a ``stat`` mode that is not a regular file's is, in words (``'a FIFO (named
    pipe)'``)."""
    return next((name for test, name in _KINDS if test(mode)), 'not a regular file')


def _named(path: str) -> str:
    """``path``, with the target it links to when it is a symbolic link."""
    if os.path.islink(path):
        return f'{path} (a link to {os.path.realpath(path)})'
    return path


def _not_regular(path: str, mode: int, what: str, use: str = 'read') -> UnsafeFileError:
    doing = {'read': 'reading', 'written': 'writing'}[use]
    return UnsafeFileError(
        f'{what} {_named(path)} is {file_kind(mode)}, not a regular file: it is not {use} '
        f'({doing} it could block or never end); put the real file there')


def check_stat(path: str, st: os.stat_result, max_bytes: int, what: str) -> None:
    """Refuse a ``stat`` result that is not a regular file of at most ``max_bytes``.

    Args:
        path: The file, for the message.
        st: Its ``os.stat`` (links followed) or ``os.fstat``.
        max_bytes: The largest size accepted.
        what: What the file is for, first word of the message (``'checkpoint'``).

    Raises:
        UnsafeFileError: a FIFO, device, socket or folder, or a file over ``max_bytes``.
    """
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode, what)
    if st.st_size > max_bytes:
        raise UnsafeFileError(
            f'{what} {_named(path)} is {st.st_size:,} bytes, more than the {max_bytes:,} bytes '
            f'{"an" if what[:1] in "aeiou" else "a"} {what} may have: it is not read; check '
            'that it is the right file')


def check_regular_file(path: str, max_bytes: int, what: str = 'file') -> os.stat_result:
    """Check, without opening it, that ``path`` is a regular file of at most ``max_bytes``.

    Args:
        path: The file (links are followed).
        max_bytes: The largest size accepted.
        what: What the file is for, first word of the messages. Defaults to ``'file'``.

    Returns:
        Its ``os.stat`` result.

    Raises:
        ExplainedFileNotFoundError: nothing is there (or a dangling link).
        UnsafeFileError: not a regular file, larger than ``max_bytes``, or not stat-able.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ExplainedFileNotFoundError(f'{what} {_named(path)} does not exist') from None
    except OSError as exc:  # a link loop, a permission, a name too long
        raise UnsafeFileError(f'{what} {_named(path)} cannot be read ({exc.strerror or exc})'
                              ) from None
    check_stat(path, st, max_bytes, what)
    return st


def open_regular_file(path: str, max_bytes: int, what: str = 'file') -> BinaryIO:
    """Open ``path`` for binary reading once it is known to be a regular file within
    ``max_bytes``; the open descriptor is checked again (the same file, still regular).

    Args:
        path: The file (links are followed).
        max_bytes: The largest size accepted.
        what: What the file is for, first word of the messages. Defaults to ``'file'``.

    Returns:
        The open file (blocking reads, as usual).

    Raises:
        ExplainedFileNotFoundError: nothing is there.
        UnsafeFileError: not a regular file, too large, or changed between the checks.
    """
    before = check_regular_file(path, max_bytes, what)
    try:
        # FileIO owns the descriptor from the moment it exists, so a stop signal's exception
        # anywhere below closes it exactly once (closing the bare number after handing it to
        # a file object closed it twice: EBADF, or another thread's file). One raised in the
        # opener just after the open leaves it open, harmless as that signal ends the process.
        # O_NONBLOCK: a FIFO swapped in after the stat does not block the open.
        raw = io.FileIO(path, 'rb', opener=_open_nonblocking)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise ExplainedFileNotFoundError(f'{what} {_named(path)} does not exist') from None
        if exc.errno == errno.EISDIR:  # a folder swapped in after the check: FileIO saw it first
            raise _not_regular(path, stat.S_IFDIR, what) from None
        raise UnsafeFileError(f'{what} {_named(path)} cannot be read ({exc.strerror or exc})'
                              ) from None
    try:
        fd = raw.fileno()
        after = os.fstat(fd)
        check_stat(path, after, max_bytes, what)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise UnsafeFileError(f'{what} {path} was replaced while it was being opened: it '
                                  'is not read; try again once nothing writes it')
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return io.BufferedReader(raw)
    except BaseException:
        raw.close()  # idempotent, unlike os.close
        raise


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, 'O_CLOEXEC', 0))


def open_for_append(path: str, what: str = 'file') -> TextIO:
    """Open ``path`` (created when missing) for appending UTF-8 text, only as a regular file.

    What ``open(path, 'a')`` does with what may be put there while a run goes on: a FIFO blocks
    the open until a reader comes (a run that never ends its epoch), a symbolic link is written
    through (lines appended to whatever file it names). Here the open does not follow a link
    and does not block, and the open descriptor must be a regular file.

    Args:
        path: The file.
        what: What the file is for, first word of the messages. Defaults to ``'file'``.

    Raises:
        UnsafeFileError: a link, FIFO, device, socket or folder is there, or it cannot be
            opened (the reason in brackets).
    """
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY
             | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0))
    try:  # FileIO owns the descriptor from the start (see open_regular_file)
        raw = io.FileIO(path, 'ab', opener=lambda name, _: os.open(name, flags, 0o666))
    except OSError as exc:
        if os.path.islink(path):  # O_NOFOLLOW: ELOOP
            raise UnsafeFileError(
                f'{what} {_named(path)} is a symbolic link: it is not written through (it could '
                'name any file); remove the link') from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO without reader, a folder
            mode = stat.S_IFDIR if exc.errno == errno.EISDIR else stat.S_IFIFO
            raise _not_regular(path, mode, what, 'written') from None
        raise UnsafeFileError(f'{what} {path} cannot be written ({exc.strerror or exc})'
                              ) from None
    try:
        fd = raw.fileno()
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO with a reader, a device
            raise _not_regular(path, mode, what, 'written')
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return io.TextIOWrapper(io.BufferedWriter(raw), encoding='utf-8')
    except BaseException:
        raw.close()
        raise


def read_regular_bytearray(path: str, max_bytes: int, what: str = 'file',
                           on_chunk: Optional[Callable[[memoryview], None]] = None,
                           chunk_bytes: int = _CHUNK) -> bytearray:
    """The bytes of ``path``, a regular file of at most ``max_bytes`` (checked before opening,
    and while reading: a file that grows past its size is refused), read in chunks into one
    buffer (no second copy of a large file).

    Args:
        path: The file (links are followed).
        max_bytes: The largest size accepted.
        what: What the file is for, first word of the messages. Defaults to ``'file'``.
        on_chunk: Called with each chunk as it is read (a digest, a check for a stop
            request). Defaults to None.
        chunk_bytes: The size of the reads. Defaults to 16 MiB.

    Raises:
        ExplainedFileNotFoundError: nothing is there.
        UnsafeFileError: not a regular file, too large, or unreadable.
    """
    with open_regular_file(path, max_bytes, what) as f:
        size = os.fstat(f.fileno()).st_size
        data = bytearray(size)
        done = 0
        with memoryview(data) as view:
            try:
                while done < size:
                    got = f.readinto(view[done:done + chunk_bytes])
                    if not got:  # shrank meanwhile
                        break
                    if on_chunk is not None:
                        on_chunk(view[done:done + got])
                    done += got
                if done == size and f.read(1):
                    raise UnsafeFileError(f'{what} {path} grew while it was being read: it is '
                                          'not used; try again once nothing writes it')
            except OSError as exc:
                if isinstance(exc, ExplainedError):
                    raise
                raise UnsafeFileError(f'{what} {path} cannot be read ({exc.strerror or exc})'
                                      ) from None
    del data[done:]
    return data


def read_regular_file(path: str, max_bytes: int, what: str = 'file',
                      on_chunk: Optional[Callable[[memoryview], None]] = None,
                      chunk_bytes: int = _CHUNK) -> bytes:
    """:func:`read_regular_bytearray` as ``bytes`` (for small files: it copies them once)."""
    return bytes(read_regular_bytearray(path, max_bytes, what, on_chunk, chunk_bytes))
