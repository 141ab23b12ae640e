"""Offline ImageNet-1k preparation: the official tars to ``train/<wnid>/`` and ``val/<wnid>/``.

Replaces the seed's ``prepare_imagenet.py`` (which imported a module that does not exist and
downloaded a shell script to sort the validation set). Nothing here touches the network.

* ``ILSVRC2012_img_train.tar`` holds one tar per class (``n01440764.tar`` ...); each is streamed
  into ``train/<wnid>/`` through a temporary folder renamed when complete, so a re-run skips the
  classes already done and redoes a class that was interrupted.
* ``ILSVRC2012_img_val.tar`` holds 50,000 flat JPEGs, sorted into ``val/<wnid>/`` with labels
  from the devkit (``ILSVRC2012_devkit_t12.tar.gz``, or its ``ILSVRC2012_validation_ground_
  truth.txt`` + ``meta.mat``) or Kaggle's ``LOC_val_solution.csv``; files already in place are
  skipped.
* Extraction is safe: only regular files are written, under their base name, and a member with
  an absolute path, ``..``, a link or a device is refused with its name. Two members of one
  archive with the same base name are both kept (the later one renamed ``<stem>_2<ext>`` ...)
  and reported; an archive that is not a tar, or is cut short, is named in a sentence.
* Class names become folder names, so every one read from the label files (Kaggle's CSV,
  ``meta.mat``) or the training tar must be a WordNet id (``n`` and 8 digits): anything else
  (``../../x``, an absolute path) is refused by name before a file is written.
* Archives are bounded: a GNU sparse member (3 GB of holes in a 20 KB tar) and a member larger
  than any file of ImageNet (``MAX_MEMBER_BYTES``) are refused by name before a byte is
  written; the devkit is read through a decompression bound (``MAX_DEVKIT_BYTES``: a 1 MB gzip
  bomb would inflate to gigabytes). Inputs must be regular files (a FIFO would wait for ever).
* Names from the archives are data: a member name with a control character (a newline would
  forge a line of ``meta/train.txt``) is written with ``_`` in its place, and said; duplicate
  class tars and duplicate ImageIds are refused by name, never resolved silently.
* Every write failure (no space, no permission, a file where a folder must go) is one sentence
  naming the path; a file is written under a temporary name and renamed when complete, so
  nothing half-written is left under its final name.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zlib
from typing import IO, Callable, Dict, Iterator, List, Optional, Set, Tuple

from ..utils.errors import ExplainedOSError
from ..utils.escape import escape_name
from ..utils.fileio import atomic_write

EXPECTED = {'train': 1_281_167, 'val': 50_000, 'classes': 1_000}
WNID = re.compile(r'n\d{8}')
# ImageNet's largest training class tar is about 300 MB, its largest image under 20 MB.
MAX_MEMBER_BYTES = {'class tar': 4 << 30, 'image': 256 << 20, 'devkit file': 64 << 20}
# The devkit tar.gz is 2.5 MB and inflates to about 10 MB; a label file is a few MB.
MAX_DEVKIT_BYTES = 256 << 20
MAX_LABEL_FILE_BYTES = 256 << 20


class UnsafeArchiveError(ValueError):
    """A tar member that would write outside the target or is not a regular file."""


class BadArchiveError(ValueError):
    """A file that should be a tar archive is not one, or is cut short or corrupt."""


class BadLabelsError(ValueError):
    """A label file names a class that is not a WordNet id, or cannot be read."""


class PrepareWriteError(ExplainedOSError):
    """A file or folder of the output could not be written (its message names the path)."""


@contextlib.contextmanager
def _writing(path: str) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into one sentence naming it (write errors of
    ``shutil.copyfileobj`` name no file)."""
    try:
        yield
    except PrepareWriteError:
        raise
    except OSError as exc:
        raise PrepareWriteError(
            f'cannot write {escape_name(path)}: {exc.strerror or exc}. Free space or fix the '
            'permissions there and re-run: finished classes and images are kept') from None


def check_input_file(path: str, what: str, max_bytes: Optional[int] = None) -> None:
    """Refuse an input that is not a regular file (a FIFO would wait for a writer for ever, a
    device never ends) or is larger than ``max_bytes``.

    Raises:
        FileNotFoundError: it does not exist; BadArchiveError: anything else wrong with it.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} {escape_name(path)} does not exist') from None
    if not stat.S_ISREG(info.st_mode):
        raise BadArchiveError(f'{what} {escape_name(path)} is not a regular file (a FIFO, '
                              'device or folder); give the downloaded file itself')
    if max_bytes is not None and info.st_size > max_bytes:
        raise BadArchiveError(f'{what} {escape_name(path)} is {info.st_size:,} bytes, more than '
                              f'the {max_bytes:,} such a file can be; is it the right file?')


def check_wnid(name: str, where: str) -> str:
    """Return ``name`` if it is a WordNet id (``n01440764``); refuse anything else by name.

    A class name becomes a folder under the output, so ``../../x`` or ``/etc`` would write
    outside it.

    Raises:
        BadLabelsError: naming ``where`` the name came from.
    """
    if not isinstance(name, str) or not WNID.fullmatch(name):
        raise BadLabelsError(f'{where}: class {name!r} is not a WordNet id (n followed by 8 '
                             'digits, e.g. n01440764) and would become a folder name; refusing '
                             'it. Is this the official file?')
    return name


@contextlib.contextmanager
def _archive_errors(label: str) -> Iterator[None]:
    """Turn the tar, gzip and xz readers' errors into one sentence naming the archive."""
    try:
        yield
    except tarfile.ReadError as exc:
        raise BadArchiveError(f'{label} is not a tar archive, or is cut short ({exc}); '
                              're-download or re-copy it') from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise BadArchiveError(f'{label}: the archive is cut short or corrupt '
                              f'({type(exc).__name__}: {exc}); re-download or re-copy it') from None


def _check_member(member: tarfile.TarInfo, archive: str,
                  max_bytes: Optional[int] = None) -> Optional[str]:
    """The member's safe base name; None for folders; raise for anything unsafe or oversize."""
    name = member.name
    parts = [p for p in name.replace('\\', '/').split('/') if p not in ('', '.')]
    if name.startswith(('/', '\\')) or '..' in parts or (parts and ':' in parts[0]):
        raise UnsafeArchiveError(f'{archive}: member {name!r} points outside the target folder; '
                                 'refusing to extract this archive.')
    if member.isdir():
        return None
    if not member.isfile():
        kind = 'link' if (member.issym() or member.islnk()) else 'special file'
        raise UnsafeArchiveError(f'{archive}: member {name!r} is a {kind}; only regular files '
                                 'are extracted. Refusing this archive.')
    if member.issparse():
        raise UnsafeArchiveError(f'{archive}: member {name!r} is a GNU sparse file of '
                                 f'{member.size:,} bytes, mostly holes; the official archives '
                                 'hold none. Refusing this archive.')
    if max_bytes is not None and member.size > max_bytes:
        raise UnsafeArchiveError(f'{archive}: member {name!r} declares {member.size:,} bytes, '
                                 f'more than any such file of ImageNet ({max_bytes:,}). '
                                 'Refusing this archive.')
    return posixpath.basename('/'.join(parts))


def safe_file_name(name: str) -> str:
    """``name`` with every character that cannot be part of a one-line list entry
    (unprintable ones, as :func:`~resnest_mm.utils.escape.escape_name` sees them, and ``\\``)
    replaced by ``_``."""
    return ''.join(c if c.isprintable() and c != '\\' else '_' for c in name)


def _iter_members(fileobj_or_path, label: str, max_bytes: Optional[int] = None,
                  mode: str = 'r|*') -> Iterator[Tuple[str, str, IO[bytes]]]:
    """``(base name, member name, file object)`` per regular file, checked for safety."""
    kwargs = dict(fileobj=fileobj_or_path) if not isinstance(fileobj_or_path, str) \
        else dict(name=fileobj_or_path)
    with _archive_errors(label), tarfile.open(mode=mode, **kwargs) as tar:
        for member in tar:
            name = _check_member(member, label, max_bytes)
            if name is None:
                continue
            yield name, member.name, tar.extractfile(member)


def iter_tar_files(fileobj_or_path, label: str,
                   max_bytes: Optional[int] = None) -> Iterator[Tuple[str, IO[bytes]]]:
    """Stream ``(base name, file object)`` for every regular file of a tar, checked for safety.

    Args:
        max_bytes: Largest member accepted. Defaults to None (any size).

    Raises:
        UnsafeArchiveError: a member that escapes, links, is a special or sparse file, or is
            over ``max_bytes``.
        BadArchiveError: not a tar, or cut short (the sentence names ``label``).
    """
    for name, _, fileobj in _iter_members(fileobj_or_path, label, max_bytes):
        yield name, fileobj


class _BoundedReader(io.RawIOBase):
    """A decompressed stream that raises once more than ``limit`` bytes came out of it."""

    def __init__(self, stream: IO[bytes], limit: int, label: str) -> None:
        self.stream, self.limit, self.label, self.count = stream, limit, label, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(min(len(buffer), self.limit + 1 - self.count))
        self.count += len(data)
        if self.count > self.limit:
            raise BadArchiveError(f'{self.label} inflates to more than {self.limit:,} bytes; '
                                  'the devkit is about 10 MB inflated. Is it the right file '
                                  '(ILSVRC2012_devkit_t12.tar.gz)?')
        buffer[:len(data)] = data
        return len(data)


def _open_bounded(path: str, limit: int) -> IO[bytes]:
    """``path`` decompressed (gzip, bzip2, xz or none, by its magic bytes), bounded."""
    import bz2
    raw = open(path, 'rb')
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b'\x1f\x8b'):
        stream = gzip.GzipFile(fileobj=raw)
    elif magic.startswith(b'BZh'):
        stream = bz2.BZ2File(raw)
    elif magic.startswith(b'\xfd7zXZ'):
        stream = lzma.LZMAFile(raw)
    else:
        stream = raw
    return io.BufferedReader(_BoundedReader(stream, limit, path))


class _Names:
    """The base names written from one archive: a repeated one gets ``<stem>_<n><ext>``."""

    def __init__(self, label: str, notes: Optional[List[str]]) -> None:
        self.label = label
        self.notes = notes
        self.first: Dict[str, str] = {}  # base name -> member that had it first
        self.taken: Set[str] = set()

    def unique(self, name: str, member: str) -> str:
        if name not in self.taken:
            self.taken.add(name)
            self.first.setdefault(name, member)
            return name
        stem, ext = os.path.splitext(name)
        n = 2
        while f'{stem}_{n}{ext}' in self.taken:
            n += 1
        new = f'{stem}_{n}{ext}'
        self.taken.add(new)
        if self.notes is not None:
            self.notes.append(f'{self.label}: members {self.first.get(name, name)!r} and '
                              f'{member!r} have the same file name; both kept, the second as '
                              f'{new}')
        return new


def _write(fileobj: IO[bytes], path: str) -> None:
    """Copy a member to ``path`` through ``path.partial``, renamed when complete; on any
    failure the partial file is removed and a write error names ``path``."""
    tmp = path + '.partial'
    try:
        with _writing(path):
            with open(tmp, 'wb') as out:
                shutil.copyfileobj(fileobj, out, 1 << 20)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def extract_train(tar_path: str, out_dir: str,
                  progress: Optional[Callable[[str], None]] = None,
                  notes: Optional[List[str]] = None) -> Dict[str, int]:
    """Extract the training tar into ``out_dir/train/<wnid>/``; return images per class.

    Classes whose folder already exists are skipped (and counted from disk).

    Args:
        notes: Receives a sentence per member renamed because its base name was taken.

    Raises:
        UnsafeArchiveError, BadArchiveError: a member or an archive that cannot be used,
            named (a class tar that is not a tar, a member that is not ``<wnid>.tar`` ...).
    """
    check_input_file(tar_path, 'the training tar')
    train_dir = os.path.join(out_dir, 'train')
    with _writing(train_dir):
        os.makedirs(train_dir, exist_ok=True)
    counts: Dict[str, int] = {}
    for inner_name, inner in iter_tar_files(tar_path, tar_path, MAX_MEMBER_BYTES['class tar']):
        wnid, ext = os.path.splitext(inner_name)
        if ext.lower() != '.tar' or not WNID.fullmatch(wnid):
            raise UnsafeArchiveError(f'{tar_path}: unexpected member {inner_name!r}; the '
                                     'training tar holds one <wnid>.tar per class (e.g. '
                                     'n01440764.tar).')
        if wnid in counts:
            raise UnsafeArchiveError(f'{tar_path}: the class archive {inner_name!r} appears '
                                     'twice; the official tar holds each class once. Refusing '
                                     'to choose between them (re-download or re-copy it).')
        final = os.path.join(train_dir, wnid)
        if os.path.isdir(final):
            counts[wnid] = len(os.listdir(final))
        else:
            partial = final + '.partial'
            with _writing(partial):
                shutil.rmtree(partial, ignore_errors=True)
                os.makedirs(partial)
            label = f'{tar_path}:{inner_name}'
            names = _Names(label, notes)
            with _archive_errors(label):  # reading a member's data can fail too
                for name, member, fileobj in _iter_members(inner, label,
                                                           MAX_MEMBER_BYTES['image']):
                    name = _safe(name, member, label, notes)
                    _write(fileobj, os.path.join(partial, names.unique(name, member)))
            with _writing(final):
                os.replace(partial, final)
            counts[wnid] = len(os.listdir(final))
        if progress:
            progress(wnid)
    return counts


def _safe(name: str, member: str, label: str, notes: Optional[List[str]]) -> str:
    """The name a member is written under: its base name, control characters replaced."""
    safe = safe_file_name(name)
    if safe != name and notes is not None:
        notes.append(f'{label}: member {member!r} has unprintable characters in its name; '
                     f'written as {safe}')
    return safe


def _kaggle_labels(path: str) -> Dict[str, str]:
    check_input_file(path, 'the validation labels', MAX_LABEL_FILE_BYTES)
    labels: Dict[str, str] = {}
    first_line: Dict[str, int] = {}
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        try:
            if not {'ImageId', 'PredictionString'} <= set(reader.fieldnames or ()):
                raise BadLabelsError(f"{path}: expected Kaggle's LOC_val_solution.csv columns "
                                     f'ImageId and PredictionString, found {reader.fieldnames}')
            for row in reader:
                line = reader.line_num
                words = (row['PredictionString'] or '').split()
                image = row['ImageId']
                if not image or not words:
                    raise BadLabelsError(f'{path}, line {line}: no image id or no class')
                if image in first_line:
                    raise BadLabelsError(
                        f'{path}, line {line}: ImageId {image!r} again (first on line '
                        f'{first_line[image]}); the official file lists each image once. '
                        'Refusing to choose between its classes')
                first_line[image] = line
                labels[f'{image}.JPEG'] = check_wnid(words[0], f'{path}, line {line}')
        except csv.Error as exc:  # a field over csv's limit, a NUL byte ...
            # line_num counts the lines of the records read; the broken one is the next
            raise BadLabelsError(f'{path}, line {reader.line_num + 1}: not a readable CSV line '
                                 f'({exc}); is this Kaggle\'s LOC_val_solution.csv?') from None
        except UnicodeDecodeError:
            raise BadLabelsError(f'{path}: not UTF-8 text; is this Kaggle\'s '
                                 'LOC_val_solution.csv?') from None
    return labels


def read_val_labels(labels: str) -> Dict[str, str]:
    """Map validation file names to wnids from the devkit, its two files, or Kaggle's CSV.

    Args:
        labels (str): ``ILSVRC2012_devkit_t12.tar.gz``; a folder holding
            ``ILSVRC2012_validation_ground_truth.txt`` and ``meta.mat``; or
            ``LOC_val_solution.csv``.

    Raises:
        BadLabelsError: a class that is not a WordNet id, a line that cannot be read, or a
            class number that ``meta.mat`` lacks (each named with its file and line).
    """
    truth_name = 'ILSVRC2012_validation_ground_truth.txt'
    if labels.endswith('.csv'):
        return _kaggle_labels(labels)
    if not os.path.isdir(labels):
        check_input_file(labels, 'the validation labels')
    if os.path.isdir(labels):
        for name in (truth_name, 'meta.mat'):
            check_input_file(os.path.join(labels, name), 'the validation labels',
                             MAX_LABEL_FILE_BYTES)
        with open(os.path.join(labels, truth_name)) as f:
            truth = f.read()
        with open(os.path.join(labels, 'meta.mat'), 'rb') as f:
            meta = f.read()
    elif tarfile.is_tarfile(labels):
        truth, meta = '', b''
        with _archive_errors(labels), _open_bounded(labels, MAX_DEVKIT_BYTES) as stream:
            for name, _, fileobj in _iter_members(stream, labels,
                                                  MAX_MEMBER_BYTES['devkit file'], mode='r|'):
                if name == truth_name:
                    truth = fileobj.read().decode('utf-8', 'replace')
                elif name == 'meta.mat':
                    meta = fileobj.read()
        if not truth or not meta:
            raise ValueError(f'{labels} lacks {truth_name} or meta.mat: is it '
                             'ILSVRC2012_devkit_t12.tar.gz?')
    else:
        raise ValueError(f'validation labels {labels}: give the devkit tar, a folder with '
                         f'{truth_name} and meta.mat, or LOC_val_solution.csv')
    id_to_wnid = _ilsvrc_ids(meta, f'{labels}: meta.mat')
    result = {}
    for i, word in enumerate(truth.split(), start=1):
        where = f'{labels}: {truth_name}, line {i}'
        if not word.isdigit():
            raise BadLabelsError(f'{where}: {word!r} is not a class number')
        if int(word) not in id_to_wnid:
            raise BadLabelsError(f'{where}: class number {word} is not one of the '
                                 f'{len(id_to_wnid)} leaf classes of meta.mat')
        result[f'ILSVRC2012_val_{i:08d}.JPEG'] = id_to_wnid[int(word)]
    return result


def _ilsvrc_ids(meta_mat: bytes, where: str = 'meta.mat') -> Dict[int, str]:
    """ILSVRC2012_ID -> WNID for the 1,000 leaf classes of the devkit's meta.mat."""
    from scipy.io import loadmat
    try:
        synsets = loadmat(io.BytesIO(meta_mat), squeeze_me=True)['synsets']
        leaves = [(int(s['ILSVRC2012_ID']), s['WNID']) for s in synsets
                  if int(s['num_children']) == 0]
    except Exception as exc:  # scipy raises many types for a file that is not meta.mat
        raise BadLabelsError(f'{where}: not the devkit\'s synset table ({type(exc).__name__}: '
                             f'{exc})') from None
    return {ilsvrc_id: check_wnid(wnid, f'{where}, synset ILSVRC2012_ID {ilsvrc_id}')
            for ilsvrc_id, wnid in leaves}


def extract_val(tar_path: str, labels: Dict[str, str], out_dir: str,
                progress: Optional[Callable[[str], None]] = None,
                notes: Optional[List[str]] = None) -> Dict[str, int]:
    """Sort the validation tar into ``out_dir/val/<wnid>/``; return images per class.

    Args:
        notes: Receives a sentence per member renamed because its base name was taken.

    Raises:
        ValueError: a validation image has no label; BadLabelsError: a label that is not a
            WordNet id; BadArchiveError: the tar is not one, or is cut short.
    """
    check_input_file(tar_path, 'the validation tar')
    val_dir = os.path.join(out_dir, 'val')
    counts: Dict[str, int] = {}
    checked: Set[str] = set()
    names = _Names(tar_path, notes)
    with _archive_errors(tar_path):
        for name, member, fileobj in _iter_members(tar_path, tar_path,
                                                   MAX_MEMBER_BYTES['image']):
            wnid = labels.get(name)
            if wnid is None:
                raise ValueError(f'{tar_path}: no label for {name!r} in the validation labels '
                                 'given')
            if wnid not in checked:
                checked.add(check_wnid(wnid, f'the validation labels of {name!r}'))
            folder = os.path.join(val_dir, wnid)
            with _writing(folder):
                os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, names.unique(_safe(name, member, tar_path, notes),
                                                       member))
            if not os.path.isfile(target):
                _write(fileobj, target)
            counts[wnid] = counts.get(wnid, 0) + 1
            if progress:
                progress(name)
    return counts


def write_meta(out_dir: str) -> List[str]:
    """Write mmpretrain annotation lists ``meta/{train,val}.txt`` (``wnid/file index``), each
    complete or not at all.

    Raises:
        ValueError: a class folder of ``val`` that is not a training class, or a file name
            that cannot be one line of a list (a control character), named escaped.
        PrepareWriteError: a list cannot be written (naming it).
    """
    classes = sorted(d for d in os.listdir(os.path.join(out_dir, 'train'))
                     if not d.endswith('.partial'))
    index = {wnid: i for i, wnid in enumerate(classes)}
    written = []
    for split in ('train', 'val'):
        split_dir = os.path.join(out_dir, split)
        if not os.path.isdir(split_dir):
            continue
        path = os.path.join(out_dir, 'meta', f'{split}.txt')
        lines = []
        for wnid in sorted(d for d in os.listdir(split_dir) if not d.endswith('.partial')):
            if wnid not in index:
                raise ValueError(f'{escape_name(split_dir)}/{escape_name(wnid)} is not a '
                                 'training class')
            for name in sorted(os.listdir(os.path.join(split_dir, wnid))):
                if name.endswith('.partial'):
                    continue  # an interrupted copy: the re-run redoes it
                if safe_file_name(name) != name or name != name.strip():
                    raise ValueError(
                        f'{escape_name(os.path.join(split_dir, wnid, name))}: a file name with '
                        f'unprintable characters or edge spaces cannot be a line of {path}; '
                        'rename the file and re-run with --write-meta')
                lines.append(f'{wnid}/{name} {index[wnid]}\n')
        data = ''.join(lines).encode('utf-8')
        with _writing(path):
            atomic_write(path, lambda f, data=data: f.write(data), size=len(data))
        written.append(path)
    return written


def count_report(train: Dict[str, int], val: Dict[str, int],
                 expected: Dict[str, int] = EXPECTED) -> List[str]:
    """Lines comparing what was prepared with ImageNet-1k's counts; mismatches say so."""
    found = {'train': sum(train.values()), 'val': sum(val.values()),
             'classes': len(set(train) | set(val))}
    lines = []
    for key in ('train', 'val', 'classes'):
        if key in ('train', 'val') and not (train if key == 'train' else val):
            continue
        status = 'ok' if found[key] == expected[key] else \
            f'MISMATCH: expected {expected[key]:,}'
        lines.append(f'{key}: {found[key]:,} ({status})')
    missing_val = sorted(set(train) - set(val)) if val else []
    if missing_val:
        lines.append(f'classes with no validation image: {len(missing_val)} '
                     f'(first: {", ".join(missing_val[:5])})')
    return lines
