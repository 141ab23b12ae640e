"""ResumableSampler: DefaultSampler's order and sharding, a one-shot mid-epoch start, and
per-sample augmentation keys that do not depend on workers, world size or interruptions."""
import pickle
import random

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler

from resnest_mm.datasets.samplers import ResumableSampler, SampleIndex, seed_sample


@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_same_order_and_shards_as_default_sampler(world_size):
    data = list(range(10))
    for rank in range(world_size):
        ours = ResumableSampler(data, seed=5)
        theirs = DefaultSampler(data, seed=5)
        for sampler in (ours, theirs):
            sampler.rank, sampler.world_size = rank, world_size
            sampler.num_samples = -(-len(data) // world_size)
            sampler.total_size = sampler.num_samples * world_size
            sampler.set_epoch(3)
        assert [int(i) for i in ours] == list(theirs)
        assert len(ours) == len(theirs)


def test_skip_starts_mid_epoch_once():
    sampler = ResumableSampler(list(range(12)), seed=0)
    full = [int(i) for i in sampler]
    sampler.skip(5)
    assert [int(i) for i in sampler] == full[5:]
    assert [int(i) for i in sampler] == full  # one-shot
    with pytest.raises(ValueError, match=r'skip\(13\): this rank has 12 samples'):
        sampler.skip(13)


def test_keys_follow_the_position_in_the_epoch_whatever_the_world_size():
    data = list(range(8))
    one = {int(i): i.key for i in ResumableSampler(data, seed=1)}
    two = {}
    for rank in range(2):
        sampler = ResumableSampler(data, seed=1)
        sampler.rank, sampler.world_size, sampler.num_samples = rank, 2, 4
        sampler.total_size = 8
        two.update({int(i): i.key for i in sampler})
    assert one == two
    sampler = ResumableSampler(data, seed=1)
    sampler.set_epoch(1)
    assert {int(i): i.key for i in sampler} != one  # a new epoch draws new augmentations


def test_index_crosses_processes_with_its_key_and_seeds_the_sample():
    index = pickle.loads(pickle.dumps(SampleIndex(7, (1, 2, 3))))
    assert index == 7 and index.key == (1, 2, 3) and [0, 1, 2, 3, 4, 5, 6, 7, 8][index] == 7
    draws = []
    for _ in range(2):
        np.random.seed(99)  # whatever state the worker was in
        assert seed_sample(index)
        draws.append((np.random.rand(), random.random()))
    assert draws[0] == draws[1]
    assert seed_sample(SampleIndex(7, (1, 2, 4))) and np.random.rand() != draws[0][0]
    assert not seed_sample(7) and not seed_sample(None)


def test_plain_indices_when_asked():
    assert not any(isinstance(i, SampleIndex)
                   for i in ResumableSampler(list(range(4)), seed=0, seed_samples=False))
