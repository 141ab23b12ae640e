"""Config mistakes refused before the run starts, each in one sentence naming the key or file:
an unknown top-level key, a misspelt type name, a value of the wrong type, a ``_base_`` cycle;
and the documented ``--cfg-options`` forms that must work."""
import argparse
import glob
import os
import time

import pytest

from resnest_mm.frontends.config_loader import load_config
from resnest_mm.frontends.preflight import (
    check_top_level_keys,
    check_types,
    check_values,
    runner_keys,
)
from resnest_mm.utils.cfg_options import CfgOptionsAction

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, 'configs', 'resnest50_1xb32_digits.py')
MMPRETRAIN_CONFIGS = os.path.join(
    os.path.dirname(__import__('mmpretrain').__file__), '.mim', 'configs')


def _config(tmp_path, body, name='mine.py'):
    path = tmp_path / name
    path.write_text(f'_base_ = [{DIGITS!r}]\n' + body)
    return load_config(str(path))


def test_a_misspelt_top_level_key_is_refused_naming_the_closest_key(tmp_path):
    cfg = _config(tmp_path, 'train_dataloder = dict(batch_size=8)\n')
    with pytest.raises(KeyError, match=r"mine.py: the top-level key 'train_dataloder' is read by "
                                       r"nothing .* \(did you mean 'train_dataloader'\?\); fix "
                                       'its spelling or delete it'):
        check_top_level_keys(cfg)


def test_variables_the_config_uses_or_a_base_defines_are_keys(tmp_path):
    cfg = _config(tmp_path, 'my_epochs = 3\ntrain_cfg = dict(max_epochs=my_epochs)\n'
                            'num_classes = 10\n')  # num_classes: a variable of the base
    check_top_level_keys(cfg)


def test_the_runner_keys_come_from_the_code_that_reads_them():
    import inspect

    from mmengine.runner import Runner
    keys = runner_keys()
    assert set(inspect.signature(Runner.__init__).parameters) - {'self'} <= keys
    # read by mmengine's Runner from the config, by ours, and by mmengine's runner builder
    assert {'compile', 'sync_bn', 'unsafe_load', 'resume_fallback', 'runner_type'} <= keys


def _runnable_configs():
    ours = [p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
            if '_base_' not in p]
    theirs = glob.glob(os.path.join(MMPRETRAIN_CONFIGS, 'resnest', 'resnest*.py'))
    helpers = glob.glob(os.path.join(ROOT, 'tests', 'helpers', 'configs', '*.py'))
    return sorted(ours) + sorted(theirs) + sorted(helpers)


@pytest.mark.slow
def test_every_shipped_config_and_mmpretrains_resnest_configs_pass():
    configs = _runnable_configs()
    assert len(configs) >= 10
    for path in configs:
        cfg = load_config(path)
        check_top_level_keys(cfg)
        check_values(cfg)


def test_type_names_are_suggested_case_insensitively(tmp_path):
    cfg = _config(tmp_path, "model = dict(backbone=dict(type='ResNest'))\n")
    with pytest.raises(KeyError, match=r"model.backbone: type='ResNest' is not a registered "
                                       r".*\(did you mean 'ResNeSt'\?\)"):
        check_types(cfg)


@pytest.mark.parametrize('key,value,expected', [
    ('default_hooks.checkpoint.interval', 'abc', 'an integer'),
    ('optim_wrapper.optimizer.lr', 'abc', 'a number'),
    ('train_dataloader.batch_size', '8', 'an integer'),
    ('train_cfg.max_epochs', 2.5, 'an integer'),
    ('model.backbone.depth', 'fifty', 'an integer'),
])
def test_a_value_of_the_wrong_type_is_named_before_the_run(key, value, expected):
    cfg = load_config(DIGITS)
    cfg.merge_from_dict({key: value})
    with pytest.raises(ValueError, match=rf'^{key}={value!r}: \w+ takes {expected} there, not a '
                                         rf'{type(value).__name__}; fix it in .*digits.py or in '
                                         r'--cfg-options$'):
        check_values(cfg)


@pytest.mark.parametrize('key,value', [
    ('optim_wrapper.optimizer.lr', 1),  # an int where a float is taken
    ('default_hooks.logger.interval', 5),
    ('train_dataloader.batch_size', None),
])
def test_values_of_the_right_type_pass(key, value):
    cfg = load_config(DIGITS)
    cfg.merge_from_dict({key: value})
    check_values(cfg)


def test_a_base_cycle_names_its_files_at_once(tmp_path):
    (tmp_path / 'a.py').write_text("_base_ = ['./b.py']\nx = 1\n")
    (tmp_path / 'b.py').write_text("_base_ = ['./c.py']\n")
    (tmp_path / 'c.py').write_text("_base_ = ['./a.py']\n")
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf'a.py: the _base_ files form a cycle: {tmp_path}/a.py '
                                         rf'-> {tmp_path}/b.py -> {tmp_path}/c.py -> '
                                         rf'{tmp_path}/a.py; remove one of these _base_ entries'):
        load_config(str(tmp_path / 'a.py'))
    assert time.monotonic() - start < 2


def _parse(*items):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *items]).cfg_options


def test_the_documented_tensorboard_option_gives_dicts(tmp_path):
    from mmengine.visualization import Visualizer
    options = _parse("visualizer.vis_backends=[dict(type='LocalVisBackend'), "
                     "dict(type='TensorboardVisBackend')]", 'train_cfg.max_epochs=2')
    assert options == {'visualizer.vis_backends': [dict(type='LocalVisBackend'),
                                                   dict(type='TensorboardVisBackend')],
                       'train_cfg.max_epochs': 2}
    cfg = load_config(DIGITS)
    cfg.merge_from_dict(options)
    visualizer = Visualizer.get_instance(
        'h5-tensorboard', vis_backends=cfg.visualizer.vis_backends, save_dir=str(tmp_path))
    assert [type(b).__name__ for b in visualizer._vis_backends.values()] == [
        'LocalVisBackend', 'TensorboardVisBackend']


def test_dict_values_are_data_never_code():
    assert _parse('a=dict(x=[1, 2], y=(3, "z"))') == {'a': {'x': [1, 2], 'y': (3, 'z')}}
    # a call of anything but dict stays mmengine's text, never run
    assert _parse("a=dict(x=__import__('os'))") == {'a': "dict(x=__import__('os'))"}


@pytest.mark.parametrize('extra,message', [
    (['--cfg-options', 'default_hooks.checkpoint.interval=abc'],
     r"^default_hooks.checkpoint.interval='abc': AtomicCheckpointHook takes an integer"),
    (['--cfg-options', 'optim_wrapper.optimizer.lr=abc'],
     r"^optim_wrapper.optimizer.lr='abc': build_npu_fused_sgd takes a number"),
])
def test_train_refuses_wrong_values_before_building_anything(tmp_path, extra, message):
    from resnest_mm.frontends.cli import train
    from resnest_mm.utils.errors import ExplainedError
    work_dir = tmp_path / 'work'
    with pytest.raises(ExplainedError, match=message):
        train([DIGITS, '--work-dir', str(work_dir), *extra])
    assert not work_dir.exists()  # refused before the runner wrote anything


def test_train_refuses_an_unknown_top_level_key(tmp_path):
    from resnest_mm.frontends.cli import train
    path = tmp_path / 'typo.py'
    path.write_text(f'_base_ = [{DIGITS!r}]\ntrain_dataloder = dict(batch_size=8)\n')
    with pytest.raises(KeyError, match="did you mean 'train_dataloader'"):
        train([str(path), '--work-dir', str(tmp_path / 'work')])
