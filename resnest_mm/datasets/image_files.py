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
from typing import Dict, List, Optional, Sequence, Tuple

from mmpretrain.datasets import ImageNet as _MMPretrainImageNet

from ..utils.escape import escape_name

# mmpretrain's ImageNet list, which is also CustomDataset's default.
IMAGE_EXTENSIONS: Tuple[str, ...] = tuple(_MMPretrainImageNet.IMG_EXTENSIONS)
# What operating systems and archivers leave in folders (lower-case).
SYSTEM_FILES = frozenset({'thumbs.db', 'ehthumbs.db', 'ehthumbs_vista.db', 'desktop.ini',
                          'icon\r'})
SYSTEM_FOLDERS = frozenset({'__macosx', '@eadir', '$recycle.bin', 'system volume information'})
_SHOWN = 5  # paths quoted per kind in a sentence
MAX_DEPTH = 16  # folder levels below a split (ImageNet has 1; photo archives a handful)
MAX_ENTRIES = 20_000_000  # files and folders listed per split (ImageNet-21k: 14.2 million)


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
            shown = ', '.join(map(escape_name, paths[:_SHOWN])) + (
                f' and {len(paths) - _SHOWN} more' if len(paths) > _SHOWN else '')
            parts.append(f'{why}: {len(paths)} ({shown})')
        count = len(self.ignored)
        return (f'{escape_name(self.root)}: {count} entr{"y" if count == 1 else "ies"} '
                f'ignored, not part of the data set: {"; ".join(parts)}. Only image files '
                f'({", ".join(self.extensions)}) inside class folders are loaded')

    def problems_sentence(self) -> Optional[str]:
        """One sentence naming every broken link, link loop and unlistable folder; None if
        there is none."""
        if not self.problems:
            return None
        # the reasons escape the paths they quote where they are made
        shown = '; '.join(f'{escape_name(path)} ({what})' for path, what in
                          self.problems[:_SHOWN])
        more = f'; and {len(self.problems) - _SHOWN} more' if len(self.problems) > _SHOWN else ''
        return (f'{escape_name(self.root)}: {len(self.problems)} entr'
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


class _Walk:
    """One bounded walk of a split: each folder visited once, depth and entries limited.

    What mmengine's ``list_dir_or_file`` (and ``os.walk(followlinks=True)``) lack: a folder
    reached by two links is walked twice, so a chain of folders each holding two links to the
    next (2 x 30 levels, no cycle) is 2^30 walks; a class folder linked to ``/`` walks the
    whole file system, ``/proc`` included. Here every folder is known by its device and inode
    (one ``stat`` that resolves the links once): a folder reached again is ignored and
    reported, a folder holding the data set itself is refused, and the depth and the number of
    entries listed are bounded.
    """

    def __init__(self, scan: SplitScan, real_root: str, max_depth: int,
                 max_entries: int) -> None:
        self.scan = scan
        self.real_root = real_root
        self.max_depth = max_depth
        self.max_entries = max_entries
        self.entries = 0
        self.visited: Dict[Tuple[int, int], str] = {}
        self.stopped = False

    def enter(self, folder: str, ancestors: frozenset, depth: int) -> Optional[frozenset]:
        """The ancestors below ``folder`` if it is to be walked; None (and a note) if not."""
        scan = self.scan
        try:
            info = os.stat(folder)
        except OSError as exc:
            scan.problems.append((folder, f'cannot be read: {exc.strerror or exc}'))
            return None
        key = (info.st_dev, info.st_ino)
        if key in ancestors:  # would walk forever, as mmengine's listing does
            scan.problems.append((folder, 'a symbolic-link loop back to '
                                  f'{escape_name(os.path.realpath(folder))}'))
            return None
        real = os.path.realpath(folder)
        if real != self.real_root and (self.real_root + os.sep).startswith(
                real.rstrip(os.sep) + os.sep):
            scan.problems.append((folder, f'a link to {escape_name(real)}, a folder holding the '
                                  'data set itself; refusing to walk it'))
            return None
        if key in self.visited:
            scan.ignored.append((folder, 'a folder already walked through another path'))
            return None
        if depth > self.max_depth:
            scan.problems.append((folder, f'more than max_depth={self.max_depth} folder levels '
                                  'below the split (links nesting folders?); not walked'))
            return None
        self.visited[key] = folder
        return ancestors | {key}

    def listing(self, folder: str) -> Optional[list]:
        """The sorted entries of ``folder`` within the entry bound; None when it is reached."""
        if self.stopped:
            return None
        try:
            with os.scandir(folder) as it:
                entries = []
                for entry in it:
                    self.entries += 1
                    if self.entries > self.max_entries:
                        self.stopped = True
                        self.scan.problems.append((
                            self.scan.root, f'holds more than max_entries='
                            f'{self.max_entries:,} files and folders (stopped in '
                            f'{escape_name(folder)}); is a folder linked to a large tree?'))
                        return None
                    entries.append(entry)
        except OSError as exc:
            self.scan.problems.append((folder, f'cannot be listed: {exc.strerror or exc}'))
            return None
        return sorted(entries, key=lambda e: e.name)

    def walk_class(self, folder: str, rel: str, ancestors: frozenset, depth: int,
                   found: List[str]) -> None:
        """Collect the images below ``folder`` (``rel`` from the split root)."""
        scan = self.scan
        entries = self.listing(folder)
        for entry in entries or ():
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
                below = self.enter(full, ancestors, depth + 1)
                if below is not None:
                    self.walk_class(full, path, below, depth + 1, found)
            elif entry.is_file():
                why = ignored_reason(entry.name, scan.extensions)
                if why is None:
                    found.append(path)
                else:
                    scan.ignored.append((full, why))
            else:
                scan.ignored.append((full, 'not a regular file'))


def scan_split(root: str, extensions: Optional[Sequence[str]] = None,
               with_label: bool = True, max_depth: int = MAX_DEPTH,
               max_entries: int = MAX_ENTRIES) -> SplitScan:
    """Walk a split folder (``root/<class>/.../<image>``) once, by the rule of this module.

    Args:
        root: The split folder (``data/imagenet/train``).
        extensions: Image extensions (any case, with or without the dot). Defaults to
            mmpretrain's list (``IMAGE_EXTENSIONS``).
        with_label: False for an unlabelled split: the images anywhere below ``root`` are the
            samples (label -1) and there are no classes, as in ``CustomDataset``.
        max_depth: Folder levels walked below ``root`` (a class folder is level 1).
            Defaults to ``MAX_DEPTH`` (16).
        max_entries: Files and folders listed in all before the walk stops with a problem.
            Defaults to ``MAX_ENTRIES`` (20,000,000: ImageNet-21k holds 14.2 million).

    Returns:
        The scan; ``problems`` lists what cannot be read, nothing is raised for the data.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{root} is not a folder')
    scan = SplitScan(root=root, extensions=normalise_extensions(extensions))
    walk = _Walk(scan, os.path.realpath(root), max_depth, max_entries)
    top = walk.enter(root, frozenset(), 0)
    if top is None:
        return scan
    if not with_label:
        found: List[str] = []
        walk.walk_class(root, '', top, 0, found)
        scan.samples = [(path, -1) for path in sorted(found)]
        return scan
    entries = walk.listing(root)
    if entries is None:
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
        below = walk.enter(entry.path, top, 1)
        if below is None:
            continue  # a problem or an ignored folder, already said
        walk.walk_class(entry.path, entry.name, below, 1, found)
        if not found:
            scan.empty_classes.append(entry.name)
        scan.samples += [(path, label) for path in sorted(found)]
    return scan
