"""Annotation files (``ann_file``, ImageNet's ``meta/*.txt``) are hostile until checked: every
line names a file inside the image folder and a label within the classes, or the data set is
refused in one sentence naming the file and the line. Before (mmpretrain's ``list_from_file``
and ``int``): names outside the folder, NUL bytes and labels outside the classes were loaded
silently; a line without a label, a label ``abc`` or a non-UTF-8 byte was a traceback naming
no line; a FIFO blocked for ever."""
import os

import pytest
from mmengine.registry import DefaultScope
from mmpretrain.datasets import CustomDataset as MMPretrainCustomDataset

from resnest_mm.datasets.annotation_file import AnnotationFileError, read_annotation_file
from resnest_mm.registry import DATASETS
from resnest_mm.utils.errors import ExplainedError
from tests.helpers.images import write_image_folder
from tests.helpers.timeouts import ends_within

CLASSES = ('a', 'b')


@pytest.fixture
def root(tmp_path):
    write_image_folder(str(tmp_path / 'train'), CLASSES, per_class=2, size=16)
    (tmp_path / 'meta').mkdir()
    return tmp_path


def _build(root, lines: bytes, kind='CustomDataset', **kwargs):
    (root / 'meta' / 'train.txt').write_bytes(lines)
    if kind == 'CustomDataset':
        kwargs = dict(ann_file='meta/train.txt', data_prefix='train', **kwargs)
    else:
        kwargs = dict(split='train', **kwargs)
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return DATASETS.build(dict(type=kind, data_root=str(root), pipeline=[], **kwargs))


GOOD = b'a/0.JPEG 0\nb/1.JPEG 1\n'
BAD_LINES = {
    'climbs out': (b'../../etc/passwd 0', 'a path that leaves the image folder (..)'),
    'climbs out midway': (b'a/../../x.JPEG 0', 'a path that leaves the image folder (..)'),
    'absolute': (b'/etc/passwd 0', 'an absolute path; annotation lines name files relative to '
                 'the image folder (data_root + data_prefix)'),
    'NUL byte': (b'a/x\x00.JPEG 0', 'a control character in the file name (NUL, escape, ...)'),
    'escape': (b'a/\x1b[2Jx.JPEG 0', 'a control character in the file name (NUL, escape, ...)'),
    'label not a number': (b'a/0.JPEG abc', "the label 'abc' is not a non-negative integer (a "
                           'line is "<file> <class index>")'),
    'negative label': (b'a/0.JPEG -1', "the label '-1' is not a non-negative integer (a line is "
                       '"<file> <class index>")'),
    'label beyond the classes': (b'a/0.JPEG 2', 'the label 2 is not a class index of the 2 '
                                 'classes (0 to 1)'),
    'no label': (b'a/0.JPEG', 'no label (a line is "<file> <class index>")'),
    'not UTF-8': (b'a/\xff.JPEG 0', 'byte 0xff at column 3 is not UTF-8 (is it the right file? '
                  'names must be UTF-8)'),
}


@pytest.mark.parametrize('case', BAD_LINES)
def test_a_bad_line_is_refused_naming_the_file_and_line(root, case):
    line, why = BAD_LINES[case]
    with pytest.raises(AnnotationFileError) as refused:
        _build(root, GOOD + line + b'\n', metainfo=dict(classes=CLASSES))
    shown = line.decode('utf-8', 'replace').replace('\x00', '\\x00').replace(
        '\x1b', '\\x1b').replace('\ufffd', '\\xff')
    assert str(refused.value) == (
        f'{root}/meta/train.txt line 3: {why}: "{shown}". No sample of the file is used until '
        'every line names a file inside the image folder and a class index; fix the file (or '
        'regenerate it, e.g. prepare_imagenet.py --write-meta)')


def test_imagenet_meta_labels_are_checked_against_its_1000_classes(root):
    with pytest.raises(AnnotationFileError, match=r'meta/train\.txt line 2: the label 1000 is '
                                                  r'not a class index of the 1000 classes'):
        _build(root, b'a/0.JPEG 999\nb/1.JPEG 1000\n', kind='ImageNet')


def test_the_first_bad_line_is_named_and_the_others_counted(root):
    with pytest.raises(AnnotationFileError, match=r'line 2: .*"\.\./x 0" \(2 more bad lines '
                                                  r'after it\)\. No sample'):
        _build(root, b'a/0.JPEG 0\n../x 0\n/y 1\nb/1.JPEG z\n')


def test_an_unlabelled_list_is_checked_too(root):
    with pytest.raises(AnnotationFileError, match=r'line 1: a path that leaves the image folder '
                                                  r'\(\.\.\): "\.\./\.\./etc/shadow"\. No sample '
                                                  r'of the file is used until every line names a '
                                                  r'file inside the image folder; fix'):
        _build(root, b'../../etc/shadow\n', with_label=False)


def test_blank_lines_and_crlf_hold_no_sample_and_good_lines_load_as_mmpretrain(root):
    """A blank line was a ``ValueError`` (not enough values to unpack) naming no line."""
    ours = _build(root, b'a/0.JPEG 0\r\n\r\n  \nb/1.JPEG 1\r\n\n')
    (root / 'meta' / 'plain.txt').write_bytes(GOOD)
    theirs = MMPretrainCustomDataset(data_root=str(root), data_prefix='train',
                                     ann_file='meta/plain.txt', pipeline=[])
    assert [ours.get_data_info(i) for i in range(len(ours))] == \
        [theirs.get_data_info(i) for i in range(len(theirs))]
    assert [ours.get_data_info(i)['img_path'] for i in range(2)] == \
        [f'{root}/train/a/0.JPEG', f'{root}/train/b/1.JPEG']


def test_a_fifo_or_oversized_list_is_refused_unread(root, tmp_path):
    os.mkfifo(root / 'meta' / 'fifo.txt')
    with ends_within(10), pytest.raises(ExplainedError, match=r'annotation file .*/meta/fifo\.txt '
                                                              r'is a FIFO \(named pipe\), not a '
                                                              r'regular file'):
        with DefaultScope.overwrite_default_scope('resnest_mm'):
            DATASETS.build(dict(type='CustomDataset', data_root=str(root), pipeline=[],
                                ann_file='meta/fifo.txt', data_prefix='train'))
    (tmp_path / 'big.txt').write_bytes(GOOD * 10)
    with pytest.raises(AnnotationFileError, match=r'is 220 bytes, more than the 100 bytes an '
                                                  r'annotation file may have'):
        read_annotation_file(str(tmp_path / 'big.txt'), max_bytes=100)
