"""``labels_outside``: the samples of a data set whose label is not a class index of the model.

What neither mmengine nor mmpretrain checks: a data set's labels against the head's
``num_classes``. A label at or above it (1-based labels, a list written for another class
count, folders added since) stops training at the first batch that holds one, deep in the loss
(``one_hot``: "Class values must be smaller than num_classes"; on a GPU a device-side assert
that poisons the process), possibly hours into an epoch; in evaluation it is never raised at
all: ``Accuracy`` scores the sample wrong and the top-1 is silently lower. The annotation files
of :mod:`~resnest_mm.datasets.annotation_file` are checked against the data set's own classes
when it names them; this checks every data set, whatever built it, against the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Iterator, Optional, Tuple

import numpy as np
from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset


@dataclass
class OutsideLabels:
    """What :func:`labels_outside` found: how many samples, and the first of them."""

    count: int
    index: int
    label: int
    path: Optional[str]


def _leaves(dataset) -> Iterator[Tuple[object, int]]:
    """The data sets a wrapper draws from, each with the index its first sample has in the
    wrapper's numbering (a repeated or re-balanced data set is read once, not per copy)."""
    if isinstance(dataset, ConcatDataset):
        start = 0
        for part in dataset.datasets:
            for leaf, offset in _leaves(part):
                yield leaf, start + offset
            start += len(part)
    elif isinstance(dataset, (RepeatDataset, ClassBalancedDataset)):
        yield from _leaves(dataset.dataset)
    else:
        yield dataset, 0


def _labels(value) -> Tuple[int, ...]:
    """A sample's class indices: one (single-label) or several (multi-label)."""
    if isinstance(value, Integral):
        return (int(value), )
    array = np.asarray(value.cpu() if hasattr(value, 'cpu') else value)
    if array.dtype.kind not in 'iub':
        return ()  # scores or soft labels: not class indices
    return tuple(int(v) for v in array.ravel())


def labels_outside(dataset, num_classes: int) -> Optional[OutsideLabels]:
    """The samples of ``dataset`` with a label below 0 or at or above ``num_classes``.

    Every sample's ``gt_label`` is read from ``get_data_info`` (2 s for ImageNet's 1.28 M
    samples); samples without one (a data set without labels) pass.

    Args:
        dataset: An mmengine ``BaseDataset`` or one of mmengine's wrappers of them.
        num_classes: The number of classes the model scores.

    Returns:
        None when every label is a class index, else their count and the first such sample.
    """
    found: Optional[OutsideLabels] = None
    for leaf, offset in _leaves(dataset):
        for index in range(len(leaf)):
            info = leaf.get_data_info(index)
            value = info.get('gt_label') if isinstance(info, dict) else None
            if value is None:
                continue
            bad = [label for label in _labels(value) if not 0 <= label < num_classes]
            if not bad:
                continue
            if found is None:
                found = OutsideLabels(0, offset + index, bad[0], info.get('img_path'))
            found.count += 1
    return found
