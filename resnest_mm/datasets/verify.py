"""Scan a dataset folder as training reads it (``tools/misc/verify_dataset.py``).

The files are found by the rule of the dataset scan (:mod:`.image_files`) and decoded by the
loaders' decoder (:func:`.decode.decode_image`, with the same ``max_pixels``), so a file listed
here is exactly a file training would skip, and a file ignored here is one training ignores.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import List, Optional, Sequence

from mmengine.utils import ProgressBar

from .decode import UnreadableImageError, decode_image, read_image_bytes
from .image_files import scan_split
from .image_header import DEFAULT_MAX_PIXELS

SPLITS = ('train', 'val', 'test')


@dataclass
class VerifyReport:
    """What :func:`verify_folder` found.

    Attributes:
        images: Image files found (read or not) plus entries that could not be read.
        unreadable: ``'<path>: <reason>'`` per file or link training could not read, sorted.
        notes: Sentences about what is not part of the data set (ignored files, top-level
            entries that are not splits), one per split at most.
    """

    images: int = 0
    unreadable: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _check(path: str, max_pixels: int) -> Optional[str]:
    try:
        decode_image(read_image_bytes(path, max_pixels), path, max_pixels=max_pixels)
    except UnreadableImageError as exc:
        return str(exc)
    except OSError as exc:
        return f'{path}: {exc.strerror or exc}'
    except Exception as exc:  # never a traceback: name the file and what went wrong
        return f'{path}: unexpected {type(exc).__name__} while decoding ({exc})'
    return None


def split_folders(root: str) -> List[str]:
    """``root/{train,val,test}`` where any exist (a data root), else ``[root]`` (a split)."""
    found = [os.path.join(root, s) for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    return found or [root]


def verify_folder(root: str, workers: int = 2, max_pixels: int = DEFAULT_MAX_PIXELS,
                  extensions: Optional[Sequence[str]] = None) -> VerifyReport:
    """Decode every image of a data root (its ``train``/``val``/``test`` splits) or of one
    split, with a progress bar.

    Args:
        root: ``data/imagenet`` or ``data/imagenet/val``.
        workers: Decoding processes.
        max_pixels: The loaders' ``max_pixels``. Defaults to Pillow's limit, 89,478,485.
        extensions: The data set's ``extensions``. Defaults to mmpretrain's.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no image in class folders.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{root} is not a folder')
    report = VerifyReport()
    splits = split_folders(root)
    if splits != [root]:
        others = sorted(e.name for e in os.scandir(root)
                        if os.path.join(root, e.name) not in splits)
        if others:
            report.notes.append(f'{root}: not scanned, not a split folder '
                                f'({", ".join(SPLITS)}): {", ".join(others)}')
    paths = []
    for split in splits:
        scan = scan_split(split, extensions)
        paths += [os.path.join(split, rel) for rel, _ in scan.samples]
        report.unreadable += [f'{path}: {what}' for path, what in scan.problems]
        if scan.ignored:
            report.notes.append(scan.ignored_summary())
    if not paths and not report.unreadable:
        raise FileNotFoundError(
            f'found no image in class folders under {root}; a folder data set reads '
            f'{root}/<class>/<image> (or {root}/{{train,val}}/<class>/<image>)')
    report.images = len(paths) + len(report.unreadable)
    bar = ProgressBar(len(paths))
    check = partial(_check, max_pixels=max_pixels)
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for result in pool.map(check, paths, chunksize=64):
            bar.update()
            if result is not None:
                report.unreadable.append(result)
    print()
    report.unreadable.sort()
    return report
