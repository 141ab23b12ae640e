"""Walks that end: each folder once, links to the data set's own ancestors refused, depth and
entries bounded. A hang is a failure here after a few seconds (SIGALRM interrupts the walk,
which runs in Python between its system calls)."""
import os

import pytest
from mmengine.registry import DefaultScope

from resnest_mm.datasets.image_files import scan_split
from resnest_mm.registry import DATASETS
from tests.helpers.images import write_image_folder
from tests.helpers.timeouts import ends_within


def _build(root, **kwargs):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return DATASETS.build(dict(type='CustomDataset', data_root=str(root), pipeline=[],
                                   **kwargs))


def _link_dag(folder, levels, links=2):
    """``folder/l0/{x0,x1}`` -> ``l1``, ``l1/{x0,x1}`` -> ``l2`` ...: no cycle, but
    ``links ** levels`` paths from the top (the issue's 2 links x 30 levels)."""
    for level in range(levels + 1):
        (folder / f'l{level}').mkdir(parents=True)
    for level in range(levels):
        for i in range(links):
            os.symlink(folder / f'l{level + 1}', folder / f'l{level}' / f'x{i}')
    return folder / 'l0'


def test_a_link_dag_is_walked_once_per_folder(tmp_path):
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a', 'b'], per_class=1, size=16)
    dag = _link_dag(tmp_path / 'dag', levels=30)
    os.symlink(dag, root / 'a' / 'dag')
    write_image_folder(str(tmp_path / 'dag' / 'l30'), ['c'], per_class=1, size=16)
    with ends_within(10):
        scan = scan_split(str(root), max_depth=40)
    assert scan.problems == []
    assert scan.samples == [('a/000.JPEG', 0), ('a/dag/x0/' + 'x0/' * 29 + 'c/000.JPEG', 0),
                            ('b/000.JPEG', 1)]
    again = [path for path, why in scan.ignored if why ==
             'a folder already walked through another path']
    assert len(again) == 30  # each level's second link, reported
    with ends_within(10):  # the default depth bound ends it with a sentence
        sentence = scan_split(str(root)).problems_sentence()
    assert 'more than max_depth=16 folder levels below the split' in sentence


def test_a_class_folder_linked_to_the_root_of_the_file_system_is_refused(tmp_path):
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a'], per_class=1, size=16)
    os.symlink('/', root / 'b')
    os.symlink(tmp_path, root / 'a' / 'up')  # an ancestor of the data set, inside a class
    with ends_within(10):
        scan = scan_split(str(root))
    assert (str(root / 'b'), 'a link to /, a folder holding the data set itself; refusing to '
            'walk it') in scan.problems
    assert (str(root / 'a' / 'up'), f'a link to {tmp_path}, a folder holding the data set '
            'itself; refusing to walk it') in scan.problems
    with ends_within(10), pytest.raises(ValueError, match=f'^CustomDataset: {root}/?: 2 entries '
                                        f'cannot be read: {root}/a/up \\(a link to {tmp_path}'):
        _build(root).load_data_list()


def test_the_entries_listed_are_bounded(tmp_path):
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a', 'b', 'c'], per_class=4, size=8)
    scan = scan_split(str(root), max_entries=10)
    assert scan.problems_sentence().startswith(
        f'{root}: 1 entry cannot be read: {root} (holds more than max_entries=10 files and '
        'folders (stopped in ')
    assert scan_split(str(root), max_entries=15).problems == []  # 3 + 12 entries


def test_names_in_the_sentences_are_escaped(tmp_path):
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a'], per_class=1, size=8)
    (root / 'a' / 'notes\n\x1b[2J.txt').write_text('x')
    os.symlink(tmp_path / 'gone', root / 'a' / 'bad\nlink')
    scan = scan_split(str(root))
    for sentence in (scan.ignored_summary(), scan.problems_sentence()):
        assert '\n' not in sentence and '\x1b' not in sentence
    assert f'{root}/a/notes\\n\\x1b[2J.txt' in scan.ignored_summary()
    assert f'{root}/a/bad\\nlink (a broken symbolic link' in scan.problems_sentence()


def test_the_check_before_training_ends_on_a_link_dag(tmp_path):
    """The issue: the DAG hung the training preflight as it hung verify."""
    from mmengine.config import Config

    from resnest_mm.frontends.preflight import check_datasets
    root = tmp_path / 'train'
    write_image_folder(str(root), ['a', 'b'], per_class=1, size=16)
    os.symlink(_link_dag(tmp_path / 'dag', levels=30), root / 'a' / 'dag')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='CustomDataset', data_root=str(tmp_path), data_prefix='train'))))
    with ends_within(10), pytest.raises(ValueError, match='more than max_depth=16 folder '
                                                          'levels below the split'):
        check_datasets(cfg)
