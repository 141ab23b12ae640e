"""Which files of a folder data set are images: the one rule of the dataset scan, preflight
and ``tools/misc/verify_dataset.py``.

mmpretrain's ``CustomDataset`` / ``ImageNet`` find samples with mmengine's
``list_dir_or_file``: class folders are every sub-folder of the split, hidden ones included (a
``.ipynb_checkpoints`` becomes a class); files are kept when their lower-cased name ends with
one of ``extensions`` and does not start with a dot; everything else -- ``Thumbs.db``, notes,
broken links, images at the split root -- disappears without a word, and a symbolic-link loop
recurses until ``OSError: Too many levels of symbolic links`` ends the run. This module walks a
split once and says what each entry is, so that every tool agrees on what the data set is:

* an image: a regular file (or a link to one) in a class folder, not hidden, whose name ends
  with one of ``extensions`` (case-insensitive; mmpretrain's list by default);
* ignored and reported: hidden entries (``.DS_Store``, ``._photo.JPEG``, ``.git/``), system
  files and folders (``Thumbs.db``, ``desktop.ini``, ``__MACOSX/``), other extensions,
  anything that is not a regular file or folder, and images at the split root, outside every
  class folder;
* a problem that stops the run, named: a broken link, a link loop, a folder that cannot be
  listed.

Sample order and class numbering are mmpretrain's: classes are the sorted folder names,
samples the sorted relative paths within each class.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from mmpretrain.datasets import ImageNet as _MMPretrainImageNet

# mmpretrain's ImageNet list, which is also CustomDataset's default.
IMAGE_EXTENSIONS: Tuple[str, ...] = tuple(_MMPretrainImageNet.IMG_EXTENSIONS)
# What operating systems and archivers leave in folders (lower-case).
SYSTEM_FILES = frozenset({'thumbs.db', 'ehthumbs.db', 'ehthumbs_vista.db', 'desktop.ini',
                          'icon\r'})
SYSTEM_FOLDERS = frozenset({'__macosx', '@eadir', '$recycle.bin', 'system volume information'})
_SHOWN = 5  # paths quoted per kind in a sentence


def normalise_extensions(extensions: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """Lower-cased extensions with their dot, as ``CustomDataset`` compares them."""
    if not extensions:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = (extensions, )
    return tuple(sorted({(e if e.startswith('.') else '.' + e).lower() for e in extensions}))


def ignored_reason(name: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> Optional[str]:
    """Why a file called ``name`` in a class folder is not an image, or None when it is one.

    Args:
        name: The file's base name.
        extensions: Lower-cased extensions with their dot.
    """
    if name.startswith('.'):
        return 'hidden file'
    if name.lower() in SYSTEM_FILES:
        return 'system file'
    if not name.lower().endswith(tuple(extensions)):
        return 'not an image extension'
    return None


@dataclass
class SplitScan:
    """What a split folder holds, by the rule of this module.

    Attributes:
        root: The split folder.
        extensions: The image extensions used.
        classes: Class folder names, sorted (their index is the label).
        samples: ``(path relative to root, class index)`` per image, in mmpretrain's order.
        ignored: ``(path, why)`` per file or folder that is not part of the data set.
        empty_classes: Class folders holding no image.
        problems: ``(path, what is wrong)`` per broken link, link loop or unlistable folder.
    """

    root: str
    extensions: Tuple[str, ...]
    classes: List[str] = field(default_factory=list)
    samples: List[Tuple[str, int]] = field(default_factory=list)
    ignored: List[Tuple[str, str]] = field(default_factory=list)
    empty_classes: List[str] = field(default_factory=list)
    problems: List[Tuple[str, str]] = field(default_factory=list)

    def ignored_summary(self) -> Optional[str]:
        """One sentence counting the ignored entries by reason with a few paths; None if none."""
        if not self.ignored:
            return None
        by_reason: dict = {}
        for path, why in self.ignored:
            by_reason.setdefault(why, []).append(path)
        parts = []
        for why, paths in sorted(by_reason.items()):
            shown = ', '.join(paths[:_SHOWN]) + (f' and {len(paths) - _SHOWN} more'
                                                 if len(paths) > _SHOWN else '')
            parts.append(f'{why}: {len(paths)} ({shown})')
        return (f'{self.root}: {len(self.ignored)} entr{"y" if len(self.ignored) == 1 else "ies"} '
                f'ignored, not part of the data set: {"; ".join(parts)}. Only image files '
                f'({", ".join(self.extensions)}) inside class folders are loaded')

    def problems_sentence(self) -> Optional[str]:
        """One sentence naming every broken link, link loop and unlistable folder; None if
        there is none."""
        if not self.problems:
            return None
        shown = '; '.join(f'{path} ({what})' for path, what in self.problems[:_SHOWN])
        more = f'; and {len(self.problems) - _SHOWN} more' if len(self.problems) > _SHOWN else ''
        return (f'{self.root}: {len(self.problems)} entr'
                f'{"y" if len(self.problems) == 1 else "ies"} cannot be read: {shown}{more}. '
                'Fix or remove the links (find -L ROOT -type l lists them) and make the '
                'folders readable')


def class_folders(root: str) -> List[str]:
    """The class folder names of a split by this rule, sorted, without walking into them (what
    :func:`scan_split` numbers as classes; for class names at inference, say)."""
    return sorted(e.name for e in os.scandir(root) if not e.name.startswith('.')
                  and e.name.lower() not in SYSTEM_FOLDERS and e.is_dir())


def _link_problem(path: str) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return 'a symbolic-link loop'
        return f'a broken symbolic link to {os.readlink(path)!r}'
    return 'a link to something that is neither a file nor a folder'


def _walk_class(scan: SplitScan, folder: str, rel: str, label: int, ancestors: frozenset,
                found: List[str]) -> None:
    """Collect the images below ``folder`` (``rel`` from the split root)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        scan.problems.append((folder, f'cannot be listed: {exc.strerror or exc}'))
        return
    for entry in entries:
        path = os.path.join(rel, entry.name)
        full = entry.path
        if entry.name.startswith('.'):
            scan.ignored.append((full, 'hidden folder' if entry.is_dir() else 'hidden file'))
            continue
        if entry.is_symlink() and not os.path.exists(full):
            scan.problems.append((full, _link_problem(full)))
            continue
        if entry.is_dir() and entry.name.lower() in SYSTEM_FOLDERS:
            scan.ignored.append((full, 'system folder'))
        elif entry.is_dir():
            real = os.path.realpath(full)
            if real in ancestors:  # would walk forever, as mmengine's listing does
                scan.problems.append((full, f'a symbolic-link loop back to {real}'))
                continue
            _walk_class(scan, full, path, label, ancestors | {real}, found)
        elif entry.is_file():
            why = ignored_reason(entry.name, scan.extensions)
            if why is None:
                found.append(path)
            else:
                scan.ignored.append((full, why))
        else:
            scan.ignored.append((full, 'not a regular file'))


def scan_split(root: str, extensions: Optional[Sequence[str]] = None,
               with_label: bool = True) -> SplitScan:
    """Walk a split folder (``root/<class>/.../<image>``) once, by the rule of this module.

    Args:
        root: The split folder (``data/imagenet/train``).
        extensions: Image extensions (any case, with or without the dot). Defaults to
            mmpretrain's list (``IMAGE_EXTENSIONS``).
        with_label: False for an unlabelled split: the images anywhere below ``root`` are the
            samples (label -1) and there are no classes, as in ``CustomDataset``.

    Returns:
        The scan; ``problems`` lists what cannot be read, nothing is raised for the data.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{root} is not a folder')
    scan = SplitScan(root=root, extensions=normalise_extensions(extensions))
    real_root = os.path.realpath(root)
    if not with_label:
        found: List[str] = []
        _walk_class(scan, root, '', -1, frozenset({real_root}), found)
        scan.samples = [(path, -1) for path in sorted(found)]
        return scan
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        scan.problems.append((root, f'cannot be listed: {exc.strerror or exc}'))
        return scan
    class_dirs = []
    for entry in entries:
        full = entry.path
        if entry.name.startswith('.'):
            scan.ignored.append((full, 'hidden folder' if entry.is_dir() else 'hidden file'))
        elif entry.is_symlink() and not os.path.exists(full):
            scan.problems.append((full, _link_problem(full)))
        elif entry.is_dir() and entry.name.lower() in SYSTEM_FOLDERS:
            scan.ignored.append((full, 'system folder'))
        elif entry.is_dir():
            class_dirs.append(entry)
        elif entry.is_file() and ignored_reason(entry.name, scan.extensions) is None:
            scan.ignored.append((full, 'image at the split root, outside every class folder'))
        elif entry.is_file():
            scan.ignored.append((full, ignored_reason(entry.name, scan.extensions)))
        else:
            scan.ignored.append((full, 'not a regular file'))
    scan.classes = [entry.name for entry in class_dirs]
    for label, entry in enumerate(class_dirs):
        found = []
        real = os.path.realpath(entry.path)
        if real == real_root:
            scan.problems.append((entry.path, f'a symbolic-link loop back to {real}'))
            continue
        _walk_class(scan, entry.path, entry.name, label, frozenset({real_root, real}), found)
        if not found:
            scan.empty_classes.append(entry.name)
        scan.samples += [(path, label) for path in sorted(found)]
    return scan
