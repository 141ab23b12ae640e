"""UnreadableLog reaches every object that records unreadable files through their own
attribute: the data sets (wrapped ones too) and the transforms of their pipelines."""
import pickle

from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.registry import DefaultScope

from resnest_mm.datasets import CustomDataset
from resnest_mm.datasets.unreadable_log import UnreadableLog, attach_unreadable_log
from tests.helpers.images import write_image_folder


def _dataset(root):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return CustomDataset(data_root=root, pipeline=[
            dict(type='RandomChoice', transforms=[[dict(type='LoadImageRobust')],
                                                  [dict(type='DecodeCenterCrop', crop_size=8)]]),
            dict(type='PackInputs')])


def test_the_log_reaches_wrapped_data_sets_and_nested_transforms(tmp_path):
    root = write_image_folder(str(tmp_path / 'data'), ['a', 'b'], per_class=1, size=16)
    first, second, third = _dataset(root), _dataset(root), _dataset(root)
    log = UnreadableLog(str(tmp_path / 'records'), str(tmp_path / 'list.txt'))
    # data set and its 2 loaders, for each data set
    assert attach_unreadable_log(ConcatDataset([first, second]), log) == 6
    assert attach_unreadable_log(RepeatDataset(third, times=2), log) == 3
    for dataset in (first, second, third):
        loaders = [t for choice in dataset.pipeline.transforms[0].transforms
                   for t in choice.transforms]
        assert dataset.unreadable_log is log and all(t.unreadable_log is log for t in loaders)


def test_records_cross_processes_as_plain_data_and_make_the_list(tmp_path):
    log = pickle.loads(pickle.dumps(UnreadableLog(str(tmp_path / 'rank0'),
                                                  str(tmp_path / 'unreadable_images.txt'))))
    log.record('/data/a\nb.JPEG', 'truncated')
    log.record('/data/c.JPEG', 'empty')
    assert log.recorded() == ['/data/a\\nb.JPEG\ttruncated', '/data/c.JPEG\tempty']
    assert log.write_list('train') == str(tmp_path / 'unreadable_images.txt')
    log.write_list('train')  # once each
    assert (tmp_path / 'unreadable_images.txt').read_text() == (
        'train\t/data/a\\nb.JPEG\ttruncated\ntrain\t/data/c.JPEG\tempty\n')
    assert UnreadableLog(str(tmp_path / 'rank1')).write_list('train') is None  # not rank 0
