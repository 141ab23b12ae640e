"""labels_outside: every sample's label against the model's class count, through mmengine's
wrappers (read once each), single- and multi-label."""
import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset, ClassBalancedDataset, ConcatDataset, RepeatDataset

from resnest_mm.datasets.label_range import labels_outside


class ListDataset(BaseDataset):
    """A data set of the given samples (an annotation file already read)."""

    def __init__(self, samples):
        self._samples = samples
        self.reads = 0
        super().__init__(pipeline=[], serialize_data=True)

    def load_data_list(self):
        return [dict(s) for s in self._samples]

    def get_data_info(self, idx):
        self.reads += 1
        return super().get_data_info(idx)

    def get_cat_ids(self, idx):  # ClassBalancedDataset's
        return [int(super().get_data_info(idx)['gt_label'])]


def _samples(labels):
    return [dict(img_path=f'img/{i}.JPEG', gt_label=label) for i, label in enumerate(labels)]


def test_class_indices_pass_and_the_first_outside_is_named_with_the_count():
    assert labels_outside(ListDataset(_samples([0, 1, 2, 1])), 3) is None
    found = labels_outside(ListDataset(_samples([0, 3, 1, 5, -1])), 3)
    assert (found.count, found.index, found.label, found.path) == (3, 1, 3, 'img/1.JPEG')


def test_samples_without_labels_pass():
    assert labels_outside(ListDataset([dict(img_path='a.JPEG')] * 3), 2) is None


@pytest.mark.parametrize('label', [np.array([0, 4]), [0, 4], torch.tensor([0, 4]), np.int64(4)])
def test_multi_label_and_numpy_or_tensor_labels_are_each_checked(label):
    found = labels_outside(ListDataset(_samples([np.array([1]), label])), 3)
    assert (found.count, found.index, found.label) == (1, 1, 4)


@pytest.mark.parametrize('label', [np.array([5.]), [5.0], np.array(5.), torch.tensor(5.)])
def test_float_labels_are_read_as_mmpretrain_casts_them(label):
    """mmpretrain's DataSample casts a float gt_label to an integer class index (format_label):
    5.0 reaches the loss as class 5."""
    assert labels_outside(ListDataset(_samples([0, label])), 3).label == 5


def test_data_sets_without_get_data_info_are_not_read():
    """A list of samples or a torch Dataset: labels unknown before loading, nothing raised."""
    assert labels_outside([dict(inputs=torch.zeros(2), labels=7)], 2) is None
    assert labels_outside(torch.utils.data.TensorDataset(torch.zeros(3)), 2) is None


def test_wrappers_number_samples_as_the_wrapper_and_read_each_data_set_once():
    first, second = ListDataset(_samples([0, 1])), ListDataset(_samples([1, 0, 7]))
    found = labels_outside(ConcatDataset([first, second]), 2)
    assert (found.count, found.index, found.label) == (1, 4, 7)  # 2 samples of `first` before
    repeated = ListDataset(_samples([1, 0, 7]))
    assert labels_outside(RepeatDataset(repeated, times=50), 2).count == 1
    assert repeated.reads == 3  # once, not 50 times
    # rare classes 1 and 9 repeated: the bad sample (4 of the data set) is the wrapper's 5th
    balanced = ClassBalancedDataset(ListDataset(_samples([1, 0, 0, 0, 9])), oversample_thr=0.5)
    found = labels_outside(balanced, 2)
    assert balanced.repeat_indices == [0, 0, 1, 2, 3, 4, 4]
    assert (found.count, found.index, found.label) == (1, 5, 9)
