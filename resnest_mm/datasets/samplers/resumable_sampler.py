"""``ResumableSampler``: mmengine's ``DefaultSampler`` that can start mid-epoch and seeds each
sample's augmentation from its place in the epoch."""
from __future__ import annotations

import logging
import random
from typing import Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import DefaultSampler
from mmengine.logging import print_log

from ...registry import DATA_SAMPLERS
from ...utils.errors import ExplainedValueError


class SampleKey(NamedTuple):
    """What :class:`ResumableSampler` yields to a data set that takes keys: the data set index
    and ``key = (seed, epoch, position in the epoch)``, which seeds that sample's augmentation
    (:func:`seed_sample`). Plain data: it crosses to the loader workers in the index queue."""

    index: int
    key: Tuple[int, int, int]


def seed_sample(key: Optional[Sequence[int]]) -> bool:
    """Seed numpy's and Python's global RNGs for one sample from its ``key``
    (:attr:`SampleKey.key`); False, and nothing seeded, when there is none.

    Called by ``LoadImageRobust`` (the first transform of every pipeline here) so the random
    augmentations of a sample depend only on the run's seed, the epoch and the sample's position
    in that epoch: not on the worker that draws it, the number of workers or devices, nor on
    whether the run was interrupted and resumed. torch's global RNG is left alone (the model
    side uses it; these transforms do not).
    """
    if key is None:
        return False
    state = np.random.SeedSequence([k & 0xFFFFFFFF for k in key]).generate_state(2)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    return True


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """``DefaultSampler`` (same order, same sharding) plus exact mid-epoch resumption.

    What mmengine's samplers lack: a way to start an epoch at a given sample without loading
    the samples before it, which a checkpoint taken mid-epoch needs. ``skip(n)`` makes the next
    iteration start at this rank's ``n``-th sample (``ResumableEpochBasedTrainLoop`` calls it).
    To a data set that takes them (``takes_sample_keys = True``: resnest_mm's ``CustomDataset``
    and ``ImageNet``) it yields :class:`SampleKey` pairs, whose key the data set hands to the
    pipeline as ``results['sample_key']`` to seed that sample's augmentation
    (:func:`seed_sample`), so the resumed epoch sees the same augmented images. Another data set
    gets plain indices, with a warning that its augmentations are not seeded per sample.

    Args:
        dataset: The dataset.
        shuffle (bool): Shuffle each epoch. Defaults to True.
        seed (int, optional): Shuffling and augmentation seed; None: synced from rank 0.
        round_up (bool): Pad to a multiple of the world size. Defaults to True.
        seed_samples (bool): Yield the augmentation keys (to a data set that takes them).
            Defaults to True.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True, seed_samples: bool = True) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        takes_keys = bool(getattr(dataset, 'takes_sample_keys', False))
        if seed_samples and not takes_keys:
            print_log(f'ResumableSampler: {type(dataset).__name__} takes no sample keys, so '
                      'its augmentations are not seeded per sample and a run resumed '
                      'mid-epoch draws other ones; use resnest_mm.CustomDataset or '
                      'resnest_mm.ImageNet for bit-exact resumption', logger='current',
                      level=logging.WARNING)
        self.seed_samples = seed_samples and takes_keys
        self._skip = 0

    def skip(self, num_samples: int) -> None:
        """Start the next iteration at this rank's ``num_samples``-th sample (once)."""
        if not 0 <= num_samples <= self.num_samples:
            raise ExplainedValueError(f'ResumableSampler.skip({num_samples}): this rank has '
                                      f'{self.num_samples} samples per epoch')
        self._skip = num_samples

    def __iter__(self) -> Iterator[Union[int, SampleKey]]:
        indices = list(super().__iter__())  # this rank's share, in order
        start, self._skip = self._skip, 0
        for position in range(start, len(indices)):
            if not self.seed_samples:
                yield indices[position]
                continue
            global_position = position * self.world_size + self.rank
            yield SampleKey(indices[position], (self.seed, self.epoch, global_position))
