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
  an absolute path, ``..``, a link or a device is refused with its name.
"""
from __future__ import annotations

import csv
import io
import os
import posixpath
import shutil
import tarfile
from typing import IO, Callable, Dict, Iterator, List, Optional, Tuple

EXPECTED = {'train': 1_281_167, 'val': 50_000, 'classes': 1_000}


class UnsafeArchiveError(ValueError):
    """A tar member that would write outside the target or is not a regular file."""


def _check_member(member: tarfile.TarInfo, archive: str) -> Optional[str]:
    """The member's safe base name; None for folders; raise for anything unsafe."""
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
    return posixpath.basename('/'.join(parts))


def iter_tar_files(fileobj_or_path, label: str) -> Iterator[Tuple[str, IO[bytes]]]:
    """Stream ``(base name, file object)`` for every regular file of a tar, checked for safety."""
    kwargs = dict(fileobj=fileobj_or_path) if not isinstance(fileobj_or_path, str) \
        else dict(name=fileobj_or_path)
    with tarfile.open(mode='r|*', **kwargs) as tar:
        for member in tar:
            name = _check_member(member, label)
            if name is None:
                continue
            yield name, tar.extractfile(member)


def _write(fileobj: IO[bytes], path: str) -> None:
    with open(path, 'wb') as out:
        shutil.copyfileobj(fileobj, out, 1 << 20)


def extract_train(tar_path: str, out_dir: str,
                  progress: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Extract the training tar into ``out_dir/train/<wnid>/``; return images per class.

    Classes whose folder already exists are skipped (and counted from disk).
    """
    train_dir = os.path.join(out_dir, 'train')
    os.makedirs(train_dir, exist_ok=True)
    counts: Dict[str, int] = {}
    for inner_name, inner in iter_tar_files(tar_path, tar_path):
        wnid, ext = os.path.splitext(inner_name)
        if ext.lower() != '.tar':
            raise UnsafeArchiveError(f'{tar_path}: unexpected member {inner_name!r}; the '
                                     'training tar holds one <wnid>.tar per class.')
        final = os.path.join(train_dir, wnid)
        if os.path.isdir(final):
            counts[wnid] = len(os.listdir(final))
        else:
            partial = final + '.partial'
            shutil.rmtree(partial, ignore_errors=True)
            os.makedirs(partial)
            for name, fileobj in iter_tar_files(inner, f'{tar_path}:{inner_name}'):
                _write(fileobj, os.path.join(partial, name))
            os.replace(partial, final)
            counts[wnid] = len(os.listdir(final))
        if progress:
            progress(wnid)
    return counts


def read_val_labels(labels: str) -> Dict[str, str]:
    """Map validation file names to wnids from the devkit, its two files, or Kaggle's CSV.

    Args:
        labels (str): ``ILSVRC2012_devkit_t12.tar.gz``; a folder holding
            ``ILSVRC2012_validation_ground_truth.txt`` and ``meta.mat``; or
            ``LOC_val_solution.csv``.
    """
    if labels.endswith('.csv'):
        with open(labels, newline='', encoding='utf-8') as f:
            return {f'{row["ImageId"]}.JPEG': row['PredictionString'].split()[0]
                    for row in csv.DictReader(f)}
    if os.path.isdir(labels):
        with open(os.path.join(labels, 'ILSVRC2012_validation_ground_truth.txt')) as f:
            truth = f.read()
        with open(os.path.join(labels, 'meta.mat'), 'rb') as f:
            meta = f.read()
    elif tarfile.is_tarfile(labels):
        truth, meta = '', b''
        for name, fileobj in iter_tar_files(labels, labels):
            if name == 'ILSVRC2012_validation_ground_truth.txt':
                truth = fileobj.read().decode()
            elif name == 'meta.mat':
                meta = fileobj.read()
        if not truth or not meta:
            raise ValueError(f'{labels} lacks ILSVRC2012_validation_ground_truth.txt or '
                             'meta.mat: is it ILSVRC2012_devkit_t12.tar.gz?')
    else:
        raise ValueError(f'validation labels {labels}: give the devkit tar, a folder with '
                         'ILSVRC2012_validation_ground_truth.txt and meta.mat, or '
                         'LOC_val_solution.csv')
    id_to_wnid = _ilsvrc_ids(meta)
    ids = [int(line) for line in truth.split()]
    return {f'ILSVRC2012_val_{i:08d}.JPEG': id_to_wnid[ilsvrc_id]
            for i, ilsvrc_id in enumerate(ids, start=1)}


def _ilsvrc_ids(meta_mat: bytes) -> Dict[int, str]:
    """ILSVRC2012_ID -> WNID for the 1,000 leaf classes of the devkit's meta.mat."""
    from scipy.io import loadmat
    synsets = loadmat(io.BytesIO(meta_mat), squeeze_me=True)['synsets']
    return {int(s['ILSVRC2012_ID']): str(s['WNID']) for s in synsets
            if int(s['num_children']) == 0}


def extract_val(tar_path: str, labels: Dict[str, str], out_dir: str,
                progress: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Sort the validation tar into ``out_dir/val/<wnid>/``; return images per class.

    Raises:
        ValueError: a validation image has no label.
    """
    val_dir = os.path.join(out_dir, 'val')
    counts: Dict[str, int] = {}
    for name, fileobj in iter_tar_files(tar_path, tar_path):
        wnid = labels.get(name)
        if wnid is None:
            raise ValueError(f'{tar_path}: no label for {name} in the validation labels given')
        folder = os.path.join(val_dir, wnid)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name)
        if not os.path.isfile(target):
            tmp = target + '.partial'
            _write(fileobj, tmp)
            os.replace(tmp, target)
        counts[wnid] = counts.get(wnid, 0) + 1
        if progress:
            progress(name)
    return counts


def write_meta(out_dir: str) -> List[str]:
    """Write mmpretrain annotation lists ``meta/{train,val}.txt`` (``wnid/file index``)."""
    classes = sorted(d for d in os.listdir(os.path.join(out_dir, 'train'))
                     if not d.endswith('.partial'))
    index = {wnid: i for i, wnid in enumerate(classes)}
    os.makedirs(os.path.join(out_dir, 'meta'), exist_ok=True)
    written = []
    for split in ('train', 'val'):
        split_dir = os.path.join(out_dir, split)
        if not os.path.isdir(split_dir):
            continue
        path = os.path.join(out_dir, 'meta', f'{split}.txt')
        with open(path, 'w', encoding='utf-8') as f:
            for wnid in sorted(os.listdir(split_dir)):
                if wnid not in index:
                    raise ValueError(f'{split_dir}/{wnid} is not a training class')
                for name in sorted(os.listdir(os.path.join(split_dir, wnid))):
                    f.write(f'{wnid}/{name} {index[wnid]}\n')
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
