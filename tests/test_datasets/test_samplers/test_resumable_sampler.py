"""ResumableSampler: DefaultSampler's order and sharding, a one-shot mid-epoch start, and
per-sample augmentation keys that do not depend on workers, world size or interruptions,
handed to the data set as explicit (index, key) pairs."""
import pickle
import random

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler
from mmengine.registry import DefaultScope

from resnest_mm.datasets import CustomDataset
from resnest_mm.datasets.samplers import ResumableSampler, SampleKey, seed_sample
from tests.helpers.images import write_image_folder


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return write_image_folder(str(tmp_path_factory.mktemp('data')), ['a', 'b'], per_class=4,
                              size=24)


def _dataset(folder, pipeline=()):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return CustomDataset(data_root=folder, pipeline=list(pipeline))


def _index(item):
    return item.index if isinstance(item, SampleKey) else item


@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_same_order_and_shards_as_default_sampler(world_size, folder):
    data = _dataset(folder)
    for rank in range(world_size):
        ours = ResumableSampler(data, seed=5)
        theirs = DefaultSampler(data, seed=5)
        for sampler in (ours, theirs):
            sampler.rank, sampler.world_size = rank, world_size
            sampler.num_samples = -(-len(data) // world_size)
            sampler.total_size = sampler.num_samples * world_size
            sampler.set_epoch(3)
        assert [_index(i) for i in ours] == list(theirs)
        assert len(ours) == len(theirs)


def test_skip_starts_mid_epoch_once():
    sampler = ResumableSampler(list(range(12)), seed=0)
    full = list(sampler)
    sampler.skip(5)
    assert list(sampler) == full[5:]
    assert list(sampler) == full  # one-shot
    with pytest.raises(ValueError, match=r'skip\(13\): this rank has 12 samples'):
        sampler.skip(13)


def test_keys_follow_the_position_in_the_epoch_whatever_the_world_size(folder):
    data = _dataset(folder)
    one = dict(ResumableSampler(data, seed=1))
    two = {}
    for rank in range(2):
        sampler = ResumableSampler(data, seed=1)
        sampler.rank, sampler.world_size, sampler.num_samples = rank, 2, 4
        sampler.total_size = 8
        two.update(dict(sampler))
    assert one == two and len(one) == 8
    sampler = ResumableSampler(data, seed=1)
    sampler.set_epoch(1)
    assert dict(sampler) != one  # a new epoch draws new augmentations


def test_a_key_crosses_processes_and_seeds_the_sample():
    item = pickle.loads(pickle.dumps(SampleKey(7, (1, 2, 3))))
    assert item == SampleKey(7, (1, 2, 3)) and not isinstance(item, int)
    draws = []
    for _ in range(2):
        np.random.seed(99)  # whatever state the worker was in
        assert seed_sample(item.key)
        draws.append((np.random.rand(), random.random()))
    assert draws[0] == draws[1]
    assert seed_sample((1, 2, 4)) and np.random.rand() != draws[0][0]
    assert not seed_sample(None)


def test_the_data_set_seeds_the_pipeline_from_the_key(folder):
    pipeline = [dict(type='LoadImageRobust'),
                dict(type='RandomResizedCrop', scale=8, crop_ratio_range=(0.1, 1.0)),
                dict(type='PackInputs')]
    data = _dataset(folder, pipeline)
    images = []
    for state in (1, 2):
        np.random.seed(state)  # another worker, another state: the key decides
        random.seed(state)
        images.append(data[SampleKey(3, (0, 0, 5))]['inputs'])
    assert (images[0] == images[1]).all()
    assert not (data[SampleKey(3, (0, 0, 6))]['inputs'] == images[0]).all()
    assert data[3]['inputs'].shape == images[0].shape  # a plain index still works


def test_plain_indices_when_asked_or_when_the_data_set_takes_no_keys(folder):
    assert all(isinstance(i, int) for i in ResumableSampler(_dataset(folder), seed=0,
                                                            seed_samples=False))
    assert all(isinstance(i, int) for i in ResumableSampler(list(range(4)), seed=0))


@pytest.mark.slow  # starts data-loader worker processes
def test_augmented_batches_are_the_same_in_workers_and_after_a_mid_epoch_start(folder):
    import torch
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    data = _dataset(folder, [dict(type='LoadImageRobust'),
                             dict(type='RandomResizedCrop', scale=16),
                             dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')])
    images = []
    for workers, skip in ((0, 0), (2, 0), (2, 4)):
        sampler = ResumableSampler(data, seed=3)
        sampler.skip(skip)
        loader = DataLoader(data, batch_size=2, sampler=sampler, num_workers=workers,
                            collate_fn=pseudo_collate)
        images.append([image for batch in loader for image in batch['inputs']])
    assert len(images[0]) == 8 and len(images[2]) == 4
    assert all(torch.equal(a, b) for a, b in zip(images[0], images[1]))
    assert all(torch.equal(a, b) for a, b in zip(images[0][4:], images[2]))
