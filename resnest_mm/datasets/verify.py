"""Scan a dataset folder with the training decoder (``tools/misc/verify_dataset.py``)."""
from __future__ import annotations

import os
from multiprocessing import Pool
from typing import List, Optional, Tuple

from mmengine.utils import ProgressBar

from .decode import UnreadableImageError, decode_image


def _check(path: str) -> Optional[str]:
    try:
        with open(path, 'rb') as f:
            decode_image(f.read(), path)
    except (UnreadableImageError, OSError) as exc:
        return str(exc) if isinstance(exc, UnreadableImageError) else f'{path}: {exc}'
    return None


def verify_folder(root: str, workers: int = 2) -> Tuple[int, List[str]]:
    """Decode every file under ``root`` (hidden files excepted) with a progress bar.

    Returns:
        tuple: the number of files, and ``'<path>: <reason>'`` for each unreadable one, sorted.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{root} is not a folder')
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                   if not f.startswith('.'))
    bar = ProgressBar(len(paths))
    bad = []
    with Pool(max(1, workers)) as pool:
        for result in pool.imap_unordered(_check, paths, chunksize=64):
            bar.update()
            if result is not None:
                bad.append(result)
    print()
    return len(paths), sorted(bad)
