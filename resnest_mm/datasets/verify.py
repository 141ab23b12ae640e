"""Scan a dataset folder as training reads it (``tools/misc/verify_dataset.py``).

The files are found by the rule of the dataset scan (:mod:`.image_files`, with its bounds on
depth and entries) and read, checked and decoded by the loaders' own code
(:meth:`LoadImageRobust.load <resnest_mm.datasets.transforms.LoadImageRobust.load>`, with the
same ``max_pixels``, ``max_scans`` and ``max_decode_seconds``), so a file listed here is exactly
a file training would skip, and a file ignored here is one training ignores. An empty class
folder, which training refuses, is listed too. Every name is escaped
(:func:`~resnest_mm.utils.escape.escape_name`): one entry is one line.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import IO, List, Optional, Sequence

from ..utils.escape import escape_name
from ..utils.task_progress import TaskProgress
from .decode import UnreadableImageError
from .decode_limits import DEFAULT_MAX_DECODE_SECONDS, DEFAULT_MAX_SCANS
from .image_files import MAX_DEPTH, MAX_ENTRIES, scan_split
from .image_header import DEFAULT_MAX_PIXELS

SPLITS = ('train', 'val', 'test')


@dataclass
class VerifyReport:
    """What :func:`verify_folder` found.

    Attributes:
        images: Image files found (read or not) plus entries that could not be read.
        unreadable: ``'<path>: <reason>'`` per file or link training could not read, sorted,
            escaped.
        problems: Sentences about the folders that training refuses (empty class folders,
            links that lead back into the data, walks over their bounds), escaped.
        notes: Sentences about what is not part of the data set (ignored files, top-level
            entries that are not splits), one per split at most.
    """

    images: int = 0
    unreadable: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _check(path: str, loader) -> Optional[str]:
    try:
        loader.load(path, {})
    except UnreadableImageError as exc:
        return escape_name(str(exc))
    except OSError as exc:
        return escape_name(f'{path}: {exc.strerror or exc}')
    except Exception as exc:  # never a traceback: name the file and what went wrong
        return escape_name(f'{path}: unexpected {type(exc).__name__} while decoding ({exc})')
    return None


def split_folders(root: str) -> List[str]:
    """``root/{train,val,test}`` where any exist (a data root), else ``[root]`` (a split)."""
    found = [os.path.join(root, s) for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    return found or [root]


def verify_folder(root: str, workers: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS,
                  extensions: Optional[Sequence[str]] = None,
                  max_scans: int = DEFAULT_MAX_SCANS,
                  max_decode_seconds: Optional[float] = DEFAULT_MAX_DECODE_SECONDS,
                  max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES,
                  stream: Optional[IO[str]] = None) -> VerifyReport:
    """Decode every image of a data root (its ``train``/``val``/``test`` splits) or of one
    split, showing progress (a bar on a terminal, a line every 5% elsewhere).

    Args:
        root: ``data/imagenet`` or ``data/imagenet/val``.
        workers: Decoding processes.
        max_pixels: The loaders' ``max_pixels``. Defaults to Pillow's limit, 89,478,485.
        extensions: The data set's ``extensions``. Defaults to mmpretrain's.
        max_scans: The loaders' ``max_scans``. Defaults to 100.
        max_decode_seconds: The loaders' ``max_decode_seconds``. Defaults to 10.
        max_depth: Folder levels walked below a split. Defaults to 16.
        max_entries: Entries listed per split. Defaults to 20,000,000.
        stream: Where progress goes. Defaults to stdout.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no image in class folders.
    """
    from .transforms.load_image import LoadImageRobust
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{escape_name(root)} is not a folder')
    report = VerifyReport()
    splits = split_folders(root)
    if splits != [root]:
        others = sorted(e.name for e in os.scandir(root)
                        if os.path.join(root, e.name) not in splits)
        if others:
            report.notes.append(f'{escape_name(root)}: not scanned, not a split folder '
                                f'({", ".join(SPLITS)}): {escape_name(", ".join(others))}')
    paths = []
    for split in splits:
        scan = scan_split(split, extensions, max_depth=max_depth, max_entries=max_entries)
        paths += [os.path.join(split, rel) for rel, _ in scan.samples]
        report.unreadable += [f'{escape_name(path)}: {what}' for path, what in scan.problems]
        if scan.empty_classes:
            shown = ', '.join(escape_name(os.path.join(split, c)) for c in scan.empty_classes)
            report.problems.append(
                f'{len(scan.empty_classes)} class folder(s) hold no image: {shown}. Training '
                'refuses an empty class (it would still get an output and a label index); add '
                'its images or remove the folder')
        if scan.ignored:
            report.notes.append(scan.ignored_summary())
    if not paths and not report.unreadable:
        raise FileNotFoundError(
            f'found no image in class folders under {escape_name(root)}; a folder data set '
            f'reads {escape_name(root)}/<class>/<image> (or '
            f'{escape_name(root)}/{{train,val}}/<class>/<image>)')
    report.images = len(paths) + len(report.unreadable)
    loader = LoadImageRobust(max_pixels=max_pixels, max_scans=max_scans,
                             max_decode_seconds=max_decode_seconds)
    check = partial(_check, loader=loader)
    with TaskProgress(len(paths), f'verify {escape_name(root)}', stream) as progress, \
            ProcessPoolExecutor(max(1, workers)) as pool:
        for result in pool.map(check, paths, chunksize=16):
            progress.update()
            if result is not None:
                report.unreadable.append(result)
    report.unreadable.sort()
    return report
