"""Every config in configs/ builds and runs a training iteration (and a validation batch where it
validates) on a tiny folder of real JPEGs.

Only data location, batch size, sample count and epoch count are overridden here; the model,
pipelines, optimizer, schedule and hooks are the config's own.
"""
import glob
import os

import pytest
import resnest.torch as original
import torch
from mmengine.config import Config

from resnest_mm.engine.runner.resnest_runner import SAFETY_HOOKS as RUNNER_SAFETY_HOOKS
from resnest_mm.frontends.cli import build_runner
from resnest_mm.registry import bare_type
from tests.helpers.images import write_image_folder

CONFIGS = sorted(p for p in glob.glob('configs/*.py'))
EVERY_CONFIG = sorted(glob.glob('configs/**/*.py', recursive=True))
# the runner's one list of them
SAFETY_HOOKS = {bare_type(h['type']) for h in RUNNER_SAFETY_HOOKS.values()}
WNIDS = [f'n{i:08d}' for i in range(1000)]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    for split in ('train', 'val'):
        write_image_folder(str(root / 'imagenet' / split), WNIDS, per_class=1, size=48)
        write_image_folder(str(root / 'small' / split), ['cat', 'dog'], per_class=2, size=48)
    official = root / 'official.pth'
    torch.save(original.resnest50().state_dict(), official)
    return root


def _shrink(loader: dict, root: str, batch_size: int = 2) -> None:
    loader.batch_size = batch_size
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.pin_memory = False
    loader.dataset.data_root = root
    loader.dataset.indices = batch_size  # one batch


def test_every_config_is_listed():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {'resnest50_8xb128_in1k.py', 'resnest50_1xb128_in1k.py',
            'resnest50_1xb128-perf_in1k.py', 'resnest50_8xb128-perf_in1k.py',
            'resnest50_1xb128-finetune_custom.py', 'resnest50_8xb256-mixup-ls-270e_in1k.py',
            'resnest50_1xb32_digits.py'} <= names


@pytest.mark.parametrize('path', [p for p in EVERY_CONFIG if '_base_' not in p],
                         ids=os.path.basename)
def test_every_config_carries_the_safety_hooks(path):
    """As loaded: the three safety hooks under default_hooks keys (whatever the config adds),
    and the runner that keeps them even when a config re-lists custom_hooks."""
    cfg = Config.fromfile(path)
    types = {bare_type(h['type']) for h in cfg.default_hooks.values() if h}
    assert SAFETY_HOOKS <= types, SAFETY_HOOKS - types
    assert cfg.runner_type == 'resnest_mm.ResNeStRunner'


@pytest.mark.slow  # a real ResNeSt-50 Runner run
@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_trains_one_iteration(path, data, tmp_path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'resnest_mm'
    assert cfg.auto_scale_lr.base_batch_size > 0
    in1k = bare_type(cfg.train_dataloader.dataset.type) == 'ImageNet'
    root = str(data / ('imagenet' if in1k else 'small'))
    _shrink(cfg.train_dataloader, root)
    validates = cfg.get('val_dataloader') is not None
    if validates:
        _shrink(cfg.val_dataloader, root)
    if 'finetune' in path:
        cfg.load_from = str(data / 'official.pth')  # a 1000-class checkpoint for 1200 classes
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.work_dir = str(tmp_path)
    cfg.default_hooks.logger.interval = 1
    runner = build_runner(cfg)
    assert SAFETY_HOOKS <= {type(h).__name__ for h in runner.hooks}
    runner.train()
    assert runner.iter == 1
    if validates:
        assert runner.message_hub.get_scalar('val/accuracy/top1') is not None
    assert os.path.isfile(os.path.join(str(tmp_path), 'summary.json'))
