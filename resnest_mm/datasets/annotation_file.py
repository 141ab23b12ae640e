"""Annotation files (``ann_file``, ImageNet's ``meta/*.txt``), read as the hostile data they are.

mmpretrain's ``CustomDataset.load_data_list`` reads an annotation file with mmengine's
``list_from_file`` and takes each line's ``x.strip().rsplit(' ', 1)`` as a file name joined to
the image folder and an ``int`` label, unchecked: a FIFO blocks for ever, a file of gigabytes
is read whole, a non-UTF-8 byte, a line without a label or a label ``abc`` is a traceback
naming no line, an absolute name or ``../../etc/passwd`` reads a file outside the image
folder, a NUL byte fails later in a loader worker, and a label of -1 or beyond the classes
trains a head that does not have it (or fails on the device with a CUDA assertion). Here the
file is read once, bounded, and every line is checked before a sample exists:

* the file must be a regular file of at most ``MAX_BYTES`` (ImageNet-21k's list is about
  600 MB) and UTF-8 (a list that is not is almost always the wrong file; a line names the byte);
* blank lines are allowed and hold no sample (a trailing newline, a list joined by ``cat``);
* a name must be relative and stay inside the image folder once ``..`` is resolved (refused by
  line, not skipped: a list naming files outside its data set is a wrong or tampered list, and
  skipping would train on less data than the list says); it must hold no NUL nor other control
  character but a tab (no file name of a real data set does, and a log line could be forged);
* a label must be a decimal integer within the data set's classes when they are known
  (``metainfo.classes``, ImageNet's 1,000), else non-negative.

A symbolic link inside the image folder that leads outside it is *not* refused here: data sets
assembled from links to shared storage are common, and resolving 1.28 million links at start
would cost minutes on NFS; the loader reads each file only as a regular image file of bounded
size, so a link to ``/etc/passwd`` or ``/dev/zero`` is an unreadable image, counted and listed.

Every refusal is one sentence naming the file, the line number and the fix, with the number of
other bad lines; names are escaped (:func:`~resnest_mm.utils.escape.escape_name`).
"""
from __future__ import annotations

import posixpath
import re
from typing import List, Optional, Tuple, Union

from ..utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from ..utils.escape import escape_name
from ..utils.safe_open import UnsafeFileError, read_regular_bytearray

MAX_BYTES = 2 << 30  # ImageNet-21k's 14.2 million lines take about 600 MB
_LABEL = re.compile(r'[0-9]{1,18}')
# C0 controls but tab, DEL, C1 controls: no file name of a data set holds one
_CONTROL = re.compile('[\x00-\x08\x0a-\x1f\x7f-\x9f]')
_SHOWN_CHARS = 120  # of a bad line, quoted in the sentence


class AnnotationFileError(ExplainedValueError):
    """An annotation file that cannot be used as it is (the sentence names its line)."""


def _name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be a file of the image folder, or None."""
    if not name:
        return 'an empty file name'
    if _CONTROL.search(name):
        return 'a control character in the file name (NUL, escape, ...)'
    if name.startswith('/'):
        return ('an absolute path; annotation lines name files relative to the image folder '
                '(data_root + data_prefix)')
    normal = posixpath.normpath(name)
    if normal == '..' or normal.startswith('../'):
        return 'a path that leaves the image folder (..)'
    return None


def _label_problem(label: str, num_classes: Optional[int]) -> Optional[str]:
    """Why ``label`` cannot be a class index, or None."""
    if not _LABEL.fullmatch(label):
        return (f'the label {escape_name(label[:20])!r} is not a non-negative integer (a line is '
                '"<file> <class index>")')
    if num_classes is not None and int(label) >= num_classes:
        return (f'the label {int(label)} is not a class index of the {num_classes} classes '
                f'(0 to {num_classes - 1})')
    return None


def read_annotation_file(path: str, with_label: bool = True,
                         num_classes: Optional[int] = None,
                         max_bytes: int = MAX_BYTES) -> List[Union[str, Tuple[str, int]]]:
    """The samples an annotation file lists, every line checked (see the module docstring).

    Args:
        path: The annotation file.
        with_label: Lines are ``<file> <label>`` (True) or ``<file>`` (False). Defaults to
            True.
        num_classes: The number of classes, when known: labels must be below it. Defaults to
            None (any non-negative label).
        max_bytes: The largest file accepted. Defaults to ``MAX_BYTES`` (2 GiB).

    Returns:
        ``(file name, label)`` per sample with labels, file names without; in the file's order.

    Raises:
        ExplainedFileNotFoundError: the file is not there.
        AnnotationFileError: not a regular file, too large, not UTF-8, or a bad line (the first
            one named, the others counted).
    """
    what = 'annotation file'
    try:
        data = read_regular_bytearray(path, max_bytes, what)
    except ExplainedFileNotFoundError:
        raise ExplainedFileNotFoundError(
            f'the {what} {escape_name(path)} does not exist; check data_root and ann_file'
        ) from None
    except UnsafeFileError as exc:
        raise AnnotationFileError(str(exc)) from None
    samples: List[Union[str, Tuple[str, int]]] = []
    first: Optional[str] = None
    bad = 0
    for number, raw in enumerate(bytes(data).split(b'\n'), 1):
        try:
            line = raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            problem, line = f'byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not ' \
                'UTF-8 (is it the right file? names must be UTF-8)', \
                raw.decode('utf-8', 'surrogateescape')
        else:
            problem = None
        text = line.strip()
        if not text and problem is None:
            continue  # a blank line holds no sample
        if problem is None:
            if with_label:
                parts = text.rsplit(' ', 1)
                if len(parts) != 2:
                    problem = 'no label (a line is "<file> <class index>")'
                else:
                    problem = _name_problem(parts[0].strip()) or \
                        _label_problem(parts[1], num_classes)
            else:
                problem = _name_problem(text)
        if problem is None:
            samples.append((parts[0].strip(), int(parts[1])) if with_label else text)
            continue
        bad += 1
        if first is None:
            shown = escape_name(line[:_SHOWN_CHARS]) + ('...' if len(line) > _SHOWN_CHARS
                                                         else '')
            first = f'{escape_name(path)} line {number}: {problem}: "{shown}"'
    if first is not None:
        more = f' ({bad - 1} more bad line{"s" if bad > 2 else ""} after it)' if bad > 1 else ''
        raise AnnotationFileError(
            f'{first}{more}. No sample of the file is used until every line names a file inside '
            'the image folder' + (' and a class index' if with_label else '') + '; fix the '
            'file (or regenerate it, e.g. prepare_imagenet.py --write-meta)')
    return samples

