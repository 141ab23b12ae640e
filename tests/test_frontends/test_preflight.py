"""Bad input before the Runner starts: each case gets one sentence naming the key or path."""
import os

import pytest
from mmengine.config import Config

from resnest_mm.frontends.preflight import check_cfg_options, check_datasets
from tests.helpers.images import write_image_folder

CONFIG = 'configs/resnest50_1xb32_digits.py'


@pytest.fixture
def cfg():
    return Config.fromfile(CONFIG)


@pytest.mark.parametrize('key,message', [
    ('optim_wrapper.optimizer.lrr', None),  # inside a component: its class checks it
    ('train_cfg.max_epochs', None),
    ('train_dataloader.dataset.pipeline.0.on_error', None),
    ('train_cfg.max_epoch', None),  # the loop is a component too (TypeError from its class)
    ('randomness.diff_rank_seed', None),  # open dicts: the Runner passes them on
    ('env_cfg.dist_cfg.backend', None),
    ('compile', None),  # optional Runner keys
    ('sync_bn', None),
    ('trian_dataloader.batch_size', r"the config has no key 'trian_dataloader' \(did you mean "
                                    r"'train_dataloader'\?\)"),
    ('randomness.sed', r"randomness has no key 'sed' \(did you mean 'seed'\?\)"),
    ('train_dataloader.dataset.pipeline.9.scale', r'pipeline is a list of 3 items; .9. is not'),
    ('train_dataloader.batch_size.x', r'train_dataloader.batch_size is a value, not a dict'),
])
def test_cfg_options_keys_must_exist(cfg, key, message):
    if message is None:
        check_cfg_options(cfg, {key: 1})
    else:
        with pytest.raises(KeyError, match=message):
            check_cfg_options(cfg, {key: 1})


def _point(cfg, root):
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = str(root)


def test_a_missing_data_root_says_where_and_what_to_do(cfg, tmp_path):
    _point(cfg, tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match=rf'train_dataloader.dataset: the image folder {tmp_path}/nowhere/'
                             r'train does not exist\. Prepare the data there .* --cfg-options '
                             r'train_dataloader\.dataset\.data_root='):
        check_datasets(cfg)


def test_an_empty_class_folder_is_named(cfg, tmp_path):
    write_image_folder(str(tmp_path / 'train'), ['a', 'b'])
    write_image_folder(str(tmp_path / 'val'), ['a', 'b'])
    os.makedirs(tmp_path / 'train' / 'c')
    (tmp_path / 'train' / 'c' / 'notes.txt').write_text('no images here')
    _point(cfg, tmp_path)
    with pytest.raises(ValueError, match=rf'1 class folder\(s\) hold no images: '
                                         rf'{tmp_path}/train/c\. An empty class still gets'):
        check_datasets(cfg)


def test_evaluation_classes_must_be_the_training_classes(cfg, tmp_path):
    write_image_folder(str(tmp_path / 'train'), ['a', 'b', 'c'])
    write_image_folder(str(tmp_path / 'val'), ['a', 'x'])
    _point(cfg, tmp_path)
    with pytest.raises(ValueError, match=r'val_dataloader.dataset: class folder\(s\) x are not '
                                         r'among the 3 training classes; label indices'):
        check_datasets(cfg)
    os.rename(tmp_path / 'val' / 'x', tmp_path / 'val' / 'c')
    with pytest.raises(ValueError, match=r'1 of the 3 training classes have no folder here '
                                         r'\(b\)'):
        check_datasets(cfg)
    write_image_folder(str(tmp_path / 'val'), ['b'])
    check_datasets(cfg)  # now consistent


def test_more_processes_than_devices_is_refused(monkeypatch):
    """No GPU here: the CUDA device count is what cannot exist, so it is the stand-in."""
    import torch

    from resnest_mm import device
    monkeypatch.setattr(device, 'device_type', lambda: 'cuda')
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    with pytest.raises(RuntimeError, match=r'8 processes were started on this node, but it has '
                                           r'4 CUDA device\(s\).*dist_train.sh CONFIG 4'):
        device.check_processes_per_node()
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '4')
    device.check_processes_per_node()


@pytest.mark.parametrize('kind', ['loop', 'broken link'])
def test_a_link_loop_or_a_broken_link_is_named_before_training(cfg, tmp_path, kind):
    """mmpretrain's scan recursed through a loop until OSError: Too many levels of symbolic
    links, once training had started, and dropped a broken link without a word."""
    for split in ('train', 'val'):
        write_image_folder(str(tmp_path / split), ['a', 'b'])
    bad = tmp_path / 'train' / 'a' / 'bad'
    os.symlink('..' if kind == 'loop' else str(tmp_path / 'gone.JPEG'), bad)
    _point(cfg, tmp_path)
    what = f'a symbolic-link loop back to {tmp_path}/train' if kind == 'loop' else \
        f"a broken symbolic link to '{tmp_path}/gone.JPEG'"
    with pytest.raises(ValueError, match=rf'^train_dataloader.dataset: {tmp_path}/train: 1 entry '
                                         rf'cannot be read: {bad} \({what}\)\. Fix or remove'):
        check_datasets(cfg)


def test_classes_are_the_folders_the_dataset_loads(cfg, tmp_path):
    """A hidden or system folder is not a class, and a class folder holding only files the
    dataset ignores (Thumbs.db, .webp when the extensions do not list it) is empty."""
    for split in ('train', 'val'):
        write_image_folder(str(tmp_path / split), ['a', 'b'])
        os.makedirs(tmp_path / split / '.ipynb_checkpoints')
    os.makedirs(tmp_path / 'train' / 'c')
    (tmp_path / 'train' / 'c' / 'Thumbs.db').write_bytes(b'x')
    (tmp_path / 'train' / 'c' / 'x.webp').write_bytes(b'x')
    _point(cfg, tmp_path)
    with pytest.raises(ValueError, match=rf'1 class folder\(s\) hold no images: '
                                         rf'{tmp_path}/train/c\.'):
        check_datasets(cfg)
    cfg.train_dataloader.dataset.extensions = ['.JPEG', '.WEBP']  # the dataset's own list
    write_image_folder(str(tmp_path / 'val'), ['c'])
    check_datasets(cfg)


def test_pretrained_init_is_refused_for_load_from():
    from mmengine.config import Config

    from resnest_mm.frontends import preflight
    cfg = Config(dict(model=dict(backbone=dict(
        type='ResNeSt', init_cfg=dict(type='Pretrained', checkpoint='x.pth')))))
    with pytest.raises(ValueError, match=r"model.backbone.init_cfg: init_cfg type Pretrained "
                                         r"loads x.pth past .*use load_from=x.pth"):
        preflight.check_pretrained_init(cfg)
    preflight.check_pretrained_init(Config(dict(model=dict(backbone=dict(type='ResNeSt')))))


def test_env_cfg_keys_are_those_the_configured_runner_reads(cfg):
    """Asked of the runner class the config names, not a list copied from mmengine: a runner
    whose ``setup_env`` reads one more ``env_cfg`` key gets it accepted."""
    from resnest_mm.engine.runner import ResNeStRunner
    from resnest_mm.registry import RUNNERS

    @RUNNERS.register_module(name='NumaBindingRunner', force=True)
    class NumaBindingRunner(ResNeStRunner):
        def setup_env(self, env_cfg):
            if env_cfg.get('numa_bind'):  # a key of this runner only
                pass
            super().setup_env(env_cfg)

    cfg.runner_type = 'resnest_mm.NumaBindingRunner'
    check_cfg_options(cfg, {'env_cfg.numa_bind': True, 'env_cfg.mp_cfg.mp_start_method': 1})
    with pytest.raises(KeyError, match=r"env_cfg has no key 'numa_bnd' \(did you mean "
                                       r"'numa_bind'\?\)"):
        check_cfg_options(cfg, {'env_cfg.numa_bnd': True})
    cfg.runner_type = 'resnest_mm.ResNeStRunner'
    with pytest.raises(KeyError, match="env_cfg has no key 'numa_bind'"):
        check_cfg_options(cfg, {'env_cfg.numa_bind': True})
