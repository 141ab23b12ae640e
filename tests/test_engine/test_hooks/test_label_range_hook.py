"""LabelRangeHook: a data set with a class folder more than the head has classes stops
training and testing before the first batch, in one sentence naming the first such file."""
import os

import pytest
from mmengine.config import Config

from resnest_mm.engine.runner import ResNeStRunner
from resnest_mm.utils.errors import ExplainedValueError
from tests.helpers.images import write_image_folder
from tests.helpers.tiny_config import TINY


@pytest.fixture(scope='module')
def three_classes(tmp_path_factory):
    """Class folders a, b, c (labels 0, 1, 2) for the tiny config's 2-class head."""
    root = tmp_path_factory.mktemp('three')
    for split in ('train', 'val'):
        write_image_folder(str(root / split), ['a', 'b', 'c'], per_class=2, size=32)
    return root


@pytest.fixture(scope='module')
def three_in_val(tmp_path_factory):
    """Training folders a, b; validation folders a, b, c."""
    root = tmp_path_factory.mktemp('three_val')
    write_image_folder(str(root / 'train'), ['a', 'b'], per_class=2, size=32)
    write_image_folder(str(root / 'val'), ['a', 'b', 'c'], per_class=2, size=32)
    return root


def _runner(data, work_dir, mixup=True):
    cfg = Config.fromfile(TINY)
    if not mixup:  # mmpretrain's preprocessor then keeps labels as indices (no one_hot)
        cfg.model.pop('train_cfg')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'labels-{os.path.basename(str(work_dir))}'
    return ResNeStRunner.from_cfg(cfg)


def _expected(data, loader, split):
    return (f'{loader}.dataset: sample 4 ({data}/{split}/c/000.JPEG) has the label 2, '
            'which is not a class index of the model (model.head.num_classes=2: 0 to 1) '
            '(labels count from 0); 2 samples in all have such labels. Fix the labels of the '
            'data set, or give the head the data\'s class count')


def test_training_stops_before_its_first_iteration(three_classes, tmp_path):
    """Without the check the loss fails at the first batch holding class c (Mixup's one_hot:
    "Class values must be smaller than num_classes"; on a GPU a device-side assert)."""
    runner = _runner(three_classes, tmp_path)
    with pytest.raises(ExplainedValueError) as info:
        runner.train()
    assert str(info.value).startswith(_expected(three_classes, 'train_dataloader', 'train'))
    assert runner.iter == 0
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]


def test_testing_stops_instead_of_scoring_the_extra_class_wrong(three_classes, tmp_path):
    """Without the check the test runs and reports a top-1 lowered by the samples of class c,
    which the 2-class head can never score right (a model trained without mixup)."""
    runner = _runner(three_classes, tmp_path, mixup=False)
    with pytest.raises(ExplainedValueError) as info:
        runner.test()
    assert str(info.value).startswith(_expected(three_classes, 'test_dataloader', 'val'))


def test_the_validation_set_is_checked_before_training_starts(three_in_val, tmp_path):
    """Not after a whole training epoch, when the first validation would start."""
    runner = _runner(three_in_val, tmp_path)
    with pytest.raises(ExplainedValueError) as info:
        runner.train()
    assert str(info.value).startswith(_expected(three_in_val, 'val_dataloader', 'val'))
    assert runner.iter == 0
