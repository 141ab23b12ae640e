"""``UnreadableLog``: where one rank's unreadable images are written down, handed explicitly to
the objects that find them.

The loading transforms find unreadable files in the data-loader workers, the device decoder
in the main process, and the data set gives up in a worker; ``UnreadableImageHook`` counts and
lists them in the main process. The hook makes one log per rank and gives it to each of them
(:func:`attach_unreadable_log`) as an attribute, ``unreadable_log``, before the loader's
workers start: the workers receive it with their copy of the data set, as they receive every
other setting of its transforms. Nothing passes through the environment.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from mmengine.logging import print_log

from ..utils.errors import ExplainedOSError, RaisedInWorker
from ..utils.escape import escape_name
from ..utils.fileio import atomic_write
from ..utils.safe_open import open_for_append, open_regular_file

# a record file's bound when read back (an entry is a few hundred bytes)
MAX_RECORD_BYTES = 1 << 30


class UnreadableRecordError(RaisedInWorker, ExplainedOSError):
    """An unreadable file could not be written down (a full disk, an I/O error, a file where
    the records' folder goes). The run stops: going on would train on a data set with files
    missing that no count or list shows, which is what the records exist to prevent."""


class UnreadableLog:
    """One rank's record of unreadable files: a folder where each process appends
    ``path<TAB>reason`` lines to a file of its own, and the run's list that a data set giving
    up writes at once (no epoch end, so no hook, will write it).

    Plain data: it is pickled into the loader workers with the data set.

    Args:
        folder (str): This rank's folder of records.
        list_path (str, optional): The run's list (``<work_dir>/unreadable_images.txt``; rank
            0 only). Defaults to None.
    """

    def __init__(self, folder: str, list_path: Optional[str] = None) -> None:
        self.folder = folder
        self.list_path = list_path

    def record(self, path: str, reason: str) -> None:
        """Note an unreadable file. The path and the reason are escaped
        (:func:`~resnest_mm.utils.escape.escape_name`): a name holding a newline or a tab is
        one entry of the list, never two.

        Raises:
            UnreadableRecordError: the record cannot be written (naming the file and why).
        """
        record = os.path.join(self.folder, f'{os.getpid()}.tsv')
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open_for_append(record, 'record file') as f:  # never a FIFO or a link
                f.write(f'{escape_name(path)}\t{escape_name(reason)}\n')
        except OSError as exc:
            raise UnreadableRecordError(
                f'could not record the unreadable image {escape_name(path)} in '
                f'{escape_name(exc.filename or record)} ({exc.strerror or exc}): the run stops '
                'rather than lose count of it. Free space on that disk (or choose another '
                '--work-dir), then continue with tools/train.py CONFIG --resume') from None

    def recorded(self) -> List[str]:
        """The ``path<TAB>reason`` entries recorded so far by every process of this rank, each
        once (complete lines only)."""
        if not os.path.isdir(self.folder):
            return []
        entries: Dict[str, str] = {}
        for name in sorted(os.listdir(self.folder)):
            if name.endswith('.tsv'):
                for line in complete_lines(os.path.join(self.folder, name))[0]:
                    entries.setdefault(line.split('\t', 1)[0], line)
        return list(entries.values())

    def write_list(self, mode: str) -> Optional[str]:
        """Merge this rank's records into the run's list (``<mode><TAB>path<TAB>reason`` lines,
        as UnreadableImageHook writes them) at once, atomically; return its path, or None when
        this rank writes no list."""
        if not self.list_path:
            return None
        # read as a regular file only: a FIFO swapped in after the check would block for ever
        lines = complete_lines(self.list_path)[0] if os.path.isfile(self.list_path) else []
        known = {line.split('\t')[1] for line in lines if line.count('\t') >= 2}
        lines += [f'{mode}\t{entry}' for entry in self.recorded()
                  if entry.split('\t', 1)[0] not in known]
        text = ''.join(line + '\n' for line in lines).encode('utf-8')
        atomic_write(self.list_path, lambda f: f.write(text), size=len(text))
        return self.list_path


def complete_lines(record: str, offset: int = 0) -> Tuple[List[str], int]:
    """The complete lines of a record file from byte ``offset`` on (a line still being written
    waits), and the offset after them. Opened as a regular file of bounded size: a FIFO or a
    device put in the records' folder is refused in one sentence instead of blocking the
    epoch's end.

    Raises:
        UnsafeFileError: not a regular file, or larger than ``MAX_RECORD_BYTES``.
    """
    with open_regular_file(record, MAX_RECORD_BYTES, 'record file') as f:
        f.seek(offset)
        data = f.read(MAX_RECORD_BYTES)
    complete = data[:data.rfind(b'\n') + 1]
    return complete.decode('utf-8').split('\n')[:-1], offset + len(complete)


def record_unreadable(log: Optional[UnreadableLog], path: str, reason: str) -> None:
    """Note an unreadable file in ``log``, or log it as a warning when no hook gave one."""
    if log is None:
        print_log(f'unreadable image {escape_name(reason)}', logger='current',
                  level=logging.WARNING)
    else:
        log.record(path, reason)


def _transforms(pipeline: Any):
    """The transforms of a pipeline, nested ones (``RandomChoice``, ``RandomApply`` ...)
    included."""
    for transform in getattr(pipeline, 'transforms', None) or []:
        yield transform
        yield from _transforms(transform)


def attach_unreadable_log(obj: Any, log: Optional[UnreadableLog]) -> int:
    """Give ``log`` to a data set (wrapped ones included: ``dataset``, ``datasets``) and to the
    transforms of its pipeline, or to a data preprocessor: to each object whose class declares
    an ``unreadable_log`` attribute. Returns how many received it."""
    given, stack = 0, [obj]
    while stack:
        node = stack.pop()
        for target in [node, *_transforms(getattr(node, 'pipeline', None))]:
            if hasattr(type(target), 'unreadable_log'):
                target.unreadable_log = log
                given += 1
        stack += [d for d in [getattr(node, 'dataset', None)] if d is not None]
        stack += list(getattr(node, 'datasets', None) or [])
    return given
