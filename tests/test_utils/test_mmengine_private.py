"""Each private member of mmengine / mmpretrain that resnest_mm uses, checked against the
installed release: present, and still doing what ``resnest_mm.utils.mmengine_private`` says.
A failure here after an upgrade names the function to update."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from resnest_mm.utils.mmengine_private import (
    SUBCLASS_MEMBERS,
    compile_model_step,
    config_path,
    default_hook_keys,
    random_dataset_index,
    randomness_cfg,
    set_dataset_classes,
    set_inference_meta,
    set_loop_position,
    shutdown_loader_workers,
)


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs=None, data_samples=None, mode='tensor'):
        return self.linear(inputs)


def _runner(tmp_path, **kwargs):
    return Runner(model=ToyModel(), work_dir=str(tmp_path), **kwargs)


def test_default_hook_keys_are_the_hooks_mmengine_registers(tmp_path):
    keys = default_hook_keys()
    assert {'timer', 'logger', 'checkpoint'} <= set(keys)
    registered = {type(h).__name__ for h in _runner(tmp_path / 'a').hooks}
    assert registered == {cfg['type'] for cfg in keys.values()}


def test_only_mmengine_default_hook_keys_may_be_none(tmp_path):
    """The meaning register_hooks relies on: mmengine drops a default key set to None and
    fails on a None under any other key."""
    runner = _runner(tmp_path / 'a', default_hooks={key: None for key in default_hook_keys()})
    assert runner.hooks == []
    with pytest.raises(AssertionError):
        _runner(tmp_path / 'b', default_hooks=dict(not_a_default_key=None))


class Dataset(BaseDataset):
    def load_data_list(self):
        return [dict(value=i) for i in range(10)]


def test_set_dataset_classes_reaches_the_public_metainfo():
    dataset = Dataset(metainfo=dict(classes=('x', )))
    set_dataset_classes(dataset, ['cat', 'dog'])
    assert dataset.metainfo['classes'] == ('cat', 'dog')


def test_random_dataset_index_draws_from_numpys_global_rng():
    dataset = Dataset()
    np.random.seed(3)
    drawn = [random_dataset_index(dataset) for _ in range(20)]
    np.random.seed(3)
    assert drawn == [int(np.random.randint(0, len(dataset))) for _ in range(20)]


def test_config_path_finds_a_relative_base_and_a_package_base(tmp_path):
    (tmp_path / 'base.py').write_text('a = 1\n')
    assert config_path('base.py', str(tmp_path / 'mine.py')) == (str(tmp_path / 'base.py'),
                                                                   None)
    found, scope = config_path('mmpretrain::_base_/default_runtime.py', str(tmp_path / 'x.py'))
    assert scope == 'mmpretrain' and os.path.isfile(found)


def test_compile_model_step_compiles_as_the_runners_compile_key_asks(tmp_path):
    runner = _runner(tmp_path / 'a', cfg=dict(compile=dict(backend='eager')))
    plain = runner.model.train_step
    compile_model_step(runner, 'train_step')
    assert runner.model.train_step is not plain
    assert hasattr(runner.model.train_step, '_torchdynamo_orig_callable')
    untouched = _runner(tmp_path / 'b')  # no compile key: nothing happens
    compile_model_step(untouched, 'train_step')
    assert 'train_step' not in vars(untouched.model)


def test_set_inference_meta_is_what_mmpretrains_inferencer_reads():
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.registry import MODELS

    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, num_stages=1, strides=(1, ), dilations=(1, ),
                      out_indices=(0, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=64)))
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[dict(type='PackInputs')]))))
    set_inference_meta(model, cfg, dict(classes=('cat', 'dog')))
    inferencer = ImageClassificationInferencer(model)
    assert inferencer.classes == ('cat', 'dog')
    assert inferencer.config is cfg
    assert model.dataset_meta == dict(classes=('cat', 'dog'))


@pytest.mark.slow  # starts a data-loader worker process
def test_shutdown_loader_workers_ends_persistent_workers():
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=1, persistent_workers=True)
    assert not shutdown_loader_workers(loader)  # no iterator yet
    list(loader)
    workers = list(loader._iterator._workers)
    assert all(w.is_alive() for w in workers)
    assert shutdown_loader_workers(loader)
    for worker in workers:
        worker.join(timeout=10)
    assert not any(w.is_alive() for w in workers)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]  # new workers, every batch
    assert shutdown_loader_workers(loader)


@pytest.mark.slow  # starts data-loader worker processes
def test_a_shutdown_loader_is_collected_at_once_in_a_cycle():
    """Collected in a reference cycle, persistent workers took 5 s each to end."""
    import gc
    import time
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=2, persistent_workers=True)
    list(loader)
    shutdown_loader_workers(loader)
    cycle = [loader]
    cycle.append(cycle)
    del cycle, loader
    start = time.monotonic()
    gc.collect()
    assert time.monotonic() - start < 2



def test_set_loop_position_is_what_the_loops_public_counters_read(tmp_path):
    from mmengine.runner import EpochBasedTrainLoop

    runner = _runner(tmp_path / 'a')
    loop = EpochBasedTrainLoop(runner, DataLoader(list(range(4)), batch_size=2), max_epochs=3)
    set_loop_position(loop, 2, 5)
    assert (loop.epoch, loop.iter) == (2, 5)


def test_randomness_cfg_is_the_dict_set_randomness_was_called_with(tmp_path):
    runner = _runner(tmp_path / 'a', randomness=dict(seed=3, diff_rank_seed=True))
    settings = randomness_cfg(runner)
    assert settings == dict(seed=3, diff_rank_seed=True)
    settings.update(seed=4)  # Runner.resume updates it so, and dumps it into the env info
    assert randomness_cfg(runner)['seed'] == 4


def _defines(cls, name: str) -> bool:
    import inspect

    source = ''.join(inspect.getsource(klass) for klass in cls.__mro__
                     if klass.__module__.startswith('mmengine'))
    return f'self.{name} =' in source or f'def {name}(' in source


@pytest.mark.parametrize('owner,name', [(owner, name) for owner, names in SUBCLASS_MEMBERS.items()
                                        for name in names])
def test_each_private_member_our_subclasses_use_is_mmengines(owner, name):
    import importlib

    module, _, cls_name = owner.rpartition('.')
    cls = getattr(importlib.import_module(module), cls_name)
    assert _defines(cls, name), f'{owner} no longer defines {name}'


def test_the_runner_flags_load_or_resume_reads_mean_what_our_override_assumes(tmp_path):
    """``ResNeStRunner.load_or_resume`` reads ``_resume``/``_load_from`` and sets
    ``_has_loaded`` as mmengine's does: a second call must not load again."""
    runner = _runner(tmp_path / 'a', load_from='missing.pth', resume=False)
    assert (runner._resume, runner._load_from, runner._has_loaded) == (False, 'missing.pth',
                                                                       False)
    runner._has_loaded = True
    runner.load_or_resume()  # mmengine returns at once: no attempt to read missing.pth


def test_checkpoint_hook_saves_every_period_through_the_overridden_method(tmp_path):
    from mmengine.hooks import CheckpointHook

    steps = []

    class Counting(CheckpointHook):
        def _save_checkpoint_with_step(self, runner, step, meta):
            steps.append(step)

    runner = _runner(tmp_path / 'a')
    hook = Counting(interval=1, by_epoch=True)
    hook.before_train(runner)
    hook.after_train_epoch(runner)
    assert steps == [1]
