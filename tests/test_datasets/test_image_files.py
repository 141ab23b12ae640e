"""The one rule for what is an image in a folder data set, and the datasets that load by it."""
import os
import shutil

import pytest
from mmengine.registry import DefaultScope
from mmpretrain.datasets import CustomDataset as MMPretrainCustomDataset

from resnest_mm.datasets.image_files import (
    IMAGE_EXTENSIONS,
    class_folders,
    ignored_reason,
    scan_split,
)
from resnest_mm.registry import DATASETS
from tests.helpers.images import write_image_folder


def _build(root, **kwargs):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return DATASETS.build(dict(type='CustomDataset', data_root=str(root), pipeline=[],
                                   **kwargs))


@pytest.fixture
def messy(tmp_path):
    """A split with everything a real folder collects, beside 2 x 2 real JPEGs."""
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a', 'b'], per_class=2, size=16)
    jpeg = (root / 'a' / '000.JPEG').read_bytes()
    (root / 'a' / 'sub').mkdir()
    (root / 'a' / 'sub' / 'deep.Jpg').write_bytes(jpeg)  # nested, mixed case: an image
    for name in ('Thumbs.db', 'desktop.ini', 'notes.txt', '.DS_Store', '._000.JPEG',
                 'photo.webp'):
        (root / 'a' / name).write_bytes(b'junk')
    (root / 'stray.JPEG').write_bytes(jpeg)  # at the split root, outside the classes
    for folder in ('.ipynb_checkpoints', '__MACOSX'):
        (root / folder).mkdir()
        (root / folder / 'copy.JPEG').write_bytes(jpeg)
    return root


def test_the_rule_for_a_file_name():
    theirs = MMPretrainCustomDataset(data_root='.', lazy_init=True).extensions
    assert sorted(IMAGE_EXTENSIONS) == sorted(theirs)  # what mmpretrain's datasets load
    assert ignored_reason('n01440764_10026.JPEG') is None
    assert ignored_reason('IMG_1.PnG') is None  # case-insensitive
    assert ignored_reason('.DS_Store') == ignored_reason('._IMG_1.JPEG') == 'hidden file'
    assert ignored_reason('Thumbs.db') == ignored_reason('DESKTOP.INI') == 'system file'
    assert ignored_reason('notes.txt') == 'not an image extension'


def test_scan_lists_what_is_loaded_and_counts_what_is_ignored(messy):
    scan = scan_split(str(messy))
    assert scan.classes == class_folders(str(messy)) == ['a', 'b']  # not .ipynb_checkpoints
    assert scan.samples == [('a/000.JPEG', 0), ('a/001.JPEG', 0), ('a/sub/deep.Jpg', 0),
                            ('b/000.JPEG', 1), ('b/001.JPEG', 1)]
    reasons = {os.path.relpath(path, messy): why for path, why in scan.ignored}
    assert reasons == {
        'a/Thumbs.db': 'system file', 'a/desktop.ini': 'system file',
        'a/notes.txt': 'not an image extension', 'a/photo.webp': 'not an image extension',
        'a/.DS_Store': 'hidden file', 'a/._000.JPEG': 'hidden file',
        'stray.JPEG': 'image at the split root, outside every class folder',
        '.ipynb_checkpoints': 'hidden folder', '__MACOSX': 'system folder'}
    summary = scan.ignored_summary()
    assert summary.startswith(f'{messy}: 9 entries ignored, not part of the data set: ')
    assert 'system file: 2 (' in summary and f'{messy}/stray.JPEG' in summary
    assert scan.problems == [] and scan.problems_sentence() is None


def test_the_dataset_loads_what_the_scan_lists_and_what_mmpretrain_loads(messy, tmp_path):
    """The same samples and labels as mmpretrain's own scan wherever mmpretrain is right (a
    folder without hidden folders); where it is not, the rule's."""
    dataset = _build(messy)
    assert [(os.path.relpath(d['img_path'], messy), d['gt_label'])
            for d in dataset.load_data_list()] == scan_split(str(messy)).samples
    assert dataset.metainfo['classes'] == ('a', 'b')
    clean = tmp_path / 'clean'
    shutil.copytree(messy, clean)
    for folder in ('.ipynb_checkpoints', '__MACOSX'):
        shutil.rmtree(clean / folder)
    theirs = MMPretrainCustomDataset(data_root=str(clean), pipeline=[])
    assert _build(clean).load_data_list() == theirs.load_data_list()
    # mmpretrain's scan makes a hidden folder a class (the labels shift); ours does not
    assert MMPretrainCustomDataset(data_root=str(messy), pipeline=[]).metainfo['classes'] \
        == ('.ipynb_checkpoints', '__MACOSX', 'a', 'b')


@pytest.mark.parametrize('kind', ['loop to the split', 'loop to the class', 'link cycle',
                                  'broken link'])
def test_links_that_cannot_be_read_are_named_by_the_scan_and_the_dataset(kind, tmp_path):
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a', 'b'], per_class=1, size=16)
    bad = root / 'b' / 'bad'
    if kind == 'loop to the split':
        os.symlink('..', bad)
    elif kind == 'loop to the class':
        os.symlink('.', bad)
    elif kind == 'link cycle':
        os.symlink(str(root / 'b' / 'other'), bad)
        os.symlink(str(bad), root / 'b' / 'other')
    else:
        os.symlink(str(tmp_path / 'gone.JPEG'), bad)
    what = {'loop to the split': f'a symbolic-link loop back to {root}',
            'loop to the class': f'a symbolic-link loop back to {root}/b',
            'link cycle': 'a symbolic-link loop',
            'broken link': f"a broken symbolic link to '{tmp_path}/gone.JPEG'"}[kind]
    scan = scan_split(str(root))
    assert (str(bad), what) in scan.problems
    sentence = f'{root}: {len(scan.problems)} entr'
    assert scan.problems_sentence().startswith(sentence)
    # mmpretrain recursed until OSError (loops) or dropped the link without a word
    with pytest.raises(ValueError, match=f'^CustomDataset: {root}: .*{bad} \\({what}'):
        _build(tmp_path, data_prefix='train').load_data_list()


def test_a_symlinked_class_folder_is_followed(tmp_path):
    write_image_folder(str(tmp_path / 'elsewhere'), ['c'], per_class=2, size=16)
    write_image_folder(str(tmp_path / 'train'), ['a'], per_class=1, size=16)
    os.symlink(str(tmp_path / 'elsewhere' / 'c'), tmp_path / 'train' / 'c')
    assert scan_split(str(tmp_path / 'train')).samples == [
        ('a/000.JPEG', 0), ('c/000.JPEG', 1), ('c/001.JPEG', 1)]
