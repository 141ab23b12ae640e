"""What a file may cost before and while it is decoded: a regular file, a bounded number of JPEG
scans, a bounded decode time.

``max_pixels`` bounds what a decode allocates, not what it computes: a progressive JPEG of
8000 x 8000 pixels (under the limit) holding 20,006 scans in 2.1 MB decodes for over three
minutes, because libjpeg passes over every block once per scan, and neither OpenCV nor Pillow
exposes libjpeg-turbo's scan limit (``TJPARAM_SCANLIMIT``). And ``open()`` on a FIFO waits for
a writer for ever, on ``/dev/zero`` reads for ever. So every image file is checked here, in
training, evaluation and ``tools/misc/verify_dataset.py`` alike (all load through
``LoadImageRobust``):

1. :func:`read_image_file`: opened without blocking, and read only when it is a regular file
   within the size any image of ``max_pixels`` needs;
2. :func:`check_jpeg_scans`: a JPEG with more than ``max_scans`` scans is not decoded;
3. :class:`DecodeClock`: the decode's CPU time is measured, and a decode over
   ``max_decode_seconds`` makes the file unreadable (the decode cannot be interrupted inside
   the C library, so this limit catches any cost the checks above do not foresee, once: the
   loader remembers the file).

Each refusal is an :class:`~resnest_mm.datasets.decode.UnreadableImageError` naming the file
and the limit, so the file is counted and listed like any unreadable one.
"""
from __future__ import annotations

import os
import stat
import time
from typing import Optional

from .decode import UnreadableImageError, check_file_size
from .image_header import DEFAULT_MAX_PIXELS, count_jpeg_scans

# Real photos have at most about 10 scans (libjpeg's progression: 10); each costs one pass over
# the image's blocks (about 30 ms at max_pixels), so 100 bounds a decode to a few seconds.
DEFAULT_MAX_SCANS = 100
# CPU seconds for one decode: a full decode at max_pixels takes about 1 s.
DEFAULT_MAX_DECODE_SECONDS = 10.0


class DecodeLimitError(UnreadableImageError):
    """A file refused for what decoding it would cost (scans, time) or for what it is (a FIFO,
    a device); unreadable by policy, as a decompression bomb is."""


def read_image_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """A local image file's bytes, read only when it is a regular file of a plausible size.

    Opened with ``O_NONBLOCK`` (a FIFO opens at once instead of waiting for a writer) and
    checked with ``fstat`` on the open file (no window between the check and the read).

    Raises:
        DecodeLimitError: not a regular file (FIFO, device, socket, folder).
        ImageTooLargeError: larger than an image of ``max_pixels`` needs.
        OSError: the file cannot be opened or read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0) | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ('a folder' if stat.S_ISDIR(info.st_mode) else
                    'a FIFO' if stat.S_ISFIFO(info.st_mode) else
                    'a device' if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                    'a socket' if stat.S_ISSOCK(info.st_mode) else 'not a file')
            raise DecodeLimitError(f'{path}: {kind}, not a regular file; not read')
        check_file_size(path, info.st_size, max_pixels)
        # os.read without a file object (7 us of 17 per file); a file growing while read is
        # cut at the size fstat saw, not followed
        chunks, left = [], info.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:  # shrunk while read: what is there
                break
            chunks.append(chunk)
            left -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b''.join(chunks)
    finally:
        os.close(fd)


def check_jpeg_scans(data: bytes, path: str, max_scans: int = DEFAULT_MAX_SCANS) -> None:
    """Refuse a JPEG holding more than ``max_scans`` scans (other formats pass).

    Raises:
        DecodeLimitError: naming the file, its scan count and the limit.
    """
    if not data.startswith(b'\xff\xd8'):
        return
    scans = count_jpeg_scans(data)
    if scans > max_scans:
        raise DecodeLimitError(
            f'{path}: a JPEG of {scans:,} scans, more than max_scans={max_scans:,} (photos have '
            'about 10; each scan is a pass over the whole image); not decoded. If such images '
            'are real, raise max_scans on the loading transform')


class DecodeClock:
    """Measure the CPU time of one decode (``with DecodeClock(path, limit): decode()``) and
    raise when it exceeded the limit.

    CPU time of the calling thread (``time.thread_time``), not wall time: a loaded machine
    does not make a file unreadable, only the work its decode needs does.

    Args:
        path: Named in the error.
        max_seconds: The limit; None for no limit.
    """

    def __init__(self, path: str, max_seconds: Optional[float]) -> None:
        self.path = path
        self.max_seconds = max_seconds
        self.seconds = 0.0

    def __enter__(self) -> DecodeClock:
        self._start = time.thread_time()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.seconds = time.thread_time() - self._start
        if exc_type is None and self.max_seconds is not None \
                and self.seconds > self.max_seconds:
            raise DecodeLimitError(
                f'{self.path}: decoding took {self.seconds:.2f} s of CPU, more than '
                f'max_decode_seconds={self.max_seconds:g}; the image is not used. If such '
                'images are real, raise max_decode_seconds on the loading transform')
