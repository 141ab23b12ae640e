"""CheckpointAdapterHook: foreign layouts converted, class-count mismatch handled or explained."""
import pytest
import resnest.torch as original
import torch
from mmengine.config import Config

from resnest_mm.frontends.cli import build_runner
from tests.helpers.images import write_image_folder

CONFIG = 'configs/resnest50_1xb32_digits.py'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('adapter')
    for split in ('train', 'val'):
        write_image_folder(str(root / split), ['a', 'b'], per_class=1, size=32)
    official = original.resnest50()
    torch.save(official.state_dict(), root / 'official.pth')
    return root, official


def _runner(root, tmp_path, load_from, head_mismatch):
    cfg = Config.fromfile(CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(root)
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.default_hooks.checkpoint_adapter.head_mismatch = head_mismatch
    cfg.load_from = load_from
    cfg.work_dir = str(tmp_path)
    return build_runner(cfg)


def test_official_weights_load_with_fresh_head_when_finetuning(data, tmp_path):
    root, official = data
    runner = _runner(root, tmp_path, str(root / 'official.pth'), 'reinit')
    runner.load_or_resume()
    model = runner.model
    torch.testing.assert_close(model.backbone.layer4[2].conv2.fc2.weight,
                               official.layer4[2].conv2.fc2.weight)
    assert model.head.fc.weight.shape[0] == 10


def test_class_mismatch_when_testing_is_explained(data, tmp_path):
    root, _ = data
    runner = _runner(root, tmp_path, str(root / 'official.pth'), 'error')
    with pytest.raises(ValueError, match='1000-class classifier but the config builds 10'):
        runner.load_or_resume()


def test_unknown_layout_points_to_the_converter(data, tmp_path):
    root, _ = data
    path = tmp_path / 'alien.pth'
    torch.save({'features.0.weight': torch.zeros(3)}, path)
    runner = _runner(root, tmp_path, str(path), 'reinit')
    with pytest.raises(ValueError, match='resnest_to_mm.py'):
        runner.load_or_resume()


def test_bad_mode_is_named():
    from resnest_mm.engine.hooks import CheckpointAdapterHook
    with pytest.raises(ValueError, match='head_mismatch'):
        CheckpointAdapterHook(head_mismatch='ignore')
