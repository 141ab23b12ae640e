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
    compile_model_step,
    config_path,
    default_hook_keys,
    random_dataset_index,
    set_dataset_classes,
    set_inference_meta,
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

