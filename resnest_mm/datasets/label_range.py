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
from typing import Callable, Iterator, Optional, Tuple

from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmpretrain.structures import format_label


@dataclass
class OutsideLabels:
    """What :func:`labels_outside` found: how many samples, and the first of them."""

    count: int
    index: int
    label: int
    path: Optional[str]


def _leaves(dataset) -> Iterator[Tuple[object, Callable[[int], int]]]:
    """The data sets a wrapper draws from, each with the map from its sample indices to the
    wrapper's (a repeated or re-balanced data set is read once, not per copy: its sample is
    named by its first place in the wrapper)."""
    if isinstance(dataset, ConcatDataset):
        start = 0
        for part in dataset.datasets:
            for leaf, place in _leaves(part):
                yield leaf, (lambda i, place=place, start=start: start + place(i))
            start += len(part)
    elif isinstance(dataset, (RepeatDataset, ClassBalancedDataset)):
        dataset.full_init()
        first = (dataset.repeat_indices.index if isinstance(dataset, ClassBalancedDataset)
                 else (lambda i: i))
        for leaf, place in _leaves(dataset.dataset):
            yield leaf, (lambda i, place=place: first(place(i)))
    else:
        yield dataset, (lambda i: i)


def _labels(value) -> Tuple[int, ...]:
    """A sample's class indices as mmpretrain's ``DataSample`` will hold them (its
    ``format_label``: one or several, floats cast to integers); none when it would refuse the
    value (it then raises its own error)."""
    if isinstance(value, Integral):
        return (int(value), )
    try:
        return tuple(int(v) for v in format_label(value).flatten().tolist())
    except (TypeError, ValueError, RuntimeError):
        return ()


def labels_outside(dataset, num_classes: int) -> Optional[OutsideLabels]:
    """The samples of ``dataset`` with a label below 0 or at or above ``num_classes``.

    Every sample's ``gt_label`` is read from ``get_data_info`` (2 s for ImageNet's 1.28 M
    samples); samples without one (a data set without labels) pass, and so do data sets that
    have no ``get_data_info`` (a list of samples, any torch ``Dataset``): their labels are not
    known before loading.

    Args:
        dataset: An mmengine ``BaseDataset`` or one of mmengine's wrappers of them.
        num_classes: The number of classes the model scores.

    Returns:
        None when every label is a class index, else their count and the first such sample.
    """
    found: Optional[OutsideLabels] = None
    for leaf, place in _leaves(dataset):
        info_of = getattr(leaf, 'get_data_info', None)
        if not callable(info_of):
            continue
        for index in range(len(leaf)):
            info = info_of(index)
            value = info.get('gt_label') if isinstance(info, dict) else None
            if value is None:
                continue
            bad = [label for label in _labels(value) if not 0 <= label < num_classes]
            if not bad:
                continue
            if found is None:
                found = OutsideLabels(0, place(index), bad[0], info.get('img_path'))
            found.count += 1
    return found
