"""``ResumableSampler``: mmengine's ``DefaultSampler`` that can start mid-epoch and seeds each
sample's augmentation from its place in the epoch."""
from __future__ import annotations

import random
from typing import Iterator, Optional, Tuple

import numpy as np
from mmengine.dataset import DefaultSampler

from ...registry import DATA_SAMPLERS
from ...utils.errors import ExplainedValueError


class SampleIndex(int):
    """A dataset index that also carries ``key = (seed, epoch, position in the epoch)``.

    mmengine's ``BaseDataset`` stores the index it was given as ``sample_idx`` in the data info, so
    the key reaches the pipeline, in whichever worker process runs it.
    """

    key: Tuple[int, int, int]

    def __new__(cls, index: int, key: Tuple[int, int, int]) -> SampleIndex:
        obj = super().__new__(cls, index)
        obj.key = key
        return obj

    def __reduce__(self):  # crosses the worker queues with its key
        return SampleIndex, (int(self), self.key)


def seed_sample(sample_idx: object) -> bool:
    """Seed numpy's and Python's global RNGs for one sample; True when ``sample_idx`` had a key.

    Called by ``LoadImageRobust`` (the first transform of every pipeline here) so the random
    augmentations of a sample depend only on the run's seed, the epoch and the sample's position
    in that epoch: not on the worker that draws it, the number of workers or devices, nor on
    whether the run was interrupted and resumed. torch's global RNG is left alone (the model
    side uses it; these transforms do not).
    """
    key = getattr(sample_idx, 'key', None)
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
    Each index it yields is a :class:`SampleIndex` whose key seeds that sample's augmentation
    (:func:`seed_sample`), so the resumed epoch sees the same augmented images.

    Args:
        dataset: The dataset.
        shuffle (bool): Shuffle each epoch. Defaults to True.
        seed (int, optional): Shuffling and augmentation seed; None: synced from rank 0.
        round_up (bool): Pad to a multiple of the world size. Defaults to True.
        seed_samples (bool): Attach the augmentation keys. Defaults to True.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True, seed_samples: bool = True) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        self.seed_samples = seed_samples
        self._skip = 0

    def skip(self, num_samples: int) -> None:
        """Start the next iteration at this rank's ``num_samples``-th sample (once)."""
        if not 0 <= num_samples <= self.num_samples:
            raise ExplainedValueError(f'ResumableSampler.skip({num_samples}): this rank has '
                                      f'{self.num_samples} samples per epoch')
        self._skip = num_samples

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())  # this rank's share, in order
        start, self._skip = self._skip, 0
        for position in range(start, len(indices)):
            if not self.seed_samples:
                yield indices[position]
                continue
            global_position = position * self.world_size + self.rank
            yield SampleIndex(indices[position], (self.seed, self.epoch, global_position))
