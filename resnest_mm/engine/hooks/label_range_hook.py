"""``LabelRangeHook``: refuse a data set whose labels are not class indices of the model."""
from __future__ import annotations

from typing import Set

from mmengine.hooks import Hook

from ...datasets.label_range import labels_outside
from ...registry import HOOKS
from ...utils.errors import ExplainedValueError
from ...utils.escape import escape_name
from ..loops import bare_model


@HOOKS.register_module()
class LabelRangeHook(Hook):
    """Before a loop's first batch, check its data set's labels against ``model.head.num_classes``
    (the validation set's too before training starts).

    The gap it fills (see :mod:`resnest_mm.datasets.label_range`): mmengine and mmpretrain
    never compare them, so a label past the head's classes ends training at the first batch
    that draws it, with an error from inside the loss (on a GPU an unrecoverable device-side
    assert), and in evaluation lowers the accuracy without a word. Here training, validation
    and testing stop before they start, in one sentence naming the loop's data set, the first
    such sample and file, how many there are, and what to change. Each data set is read once
    per run (``get_data_info`` of every sample: 2 s for ImageNet's training set). A model
    without ``head.num_classes`` is not checked.
    """

    priority = 'VERY_HIGH'  # before any hook starts workers or reads the data

    def __init__(self) -> None:
        self._checked: Set[int] = set()

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader', runner.train_dataloader)
        if runner.val_loop is not None:  # not an epoch of training before the first validation
            self._check(runner, 'val_dataloader', runner.val_dataloader)

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader', runner.val_dataloader)

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader', runner.test_dataloader)

    def _check(self, runner, where: str, dataloader) -> None:
        dataset = getattr(dataloader, 'dataset', None)
        head = getattr(bare_model(runner.model), 'head', None)
        num_classes = getattr(head, 'num_classes', None)
        if dataset is None or not isinstance(num_classes, int) or id(dataset) in self._checked:
            return
        found = labels_outside(dataset, num_classes)
        if found is None:
            self._checked.add(id(dataset))
            return
        sample = f'sample {found.index}'
        if found.path is not None:
            sample += f' ({escape_name(str(found.path))})'
        others = (f'; {found.count} samples in all have such labels' if found.count > 1
                  else '; it is the only one')
        hint = ' (labels count from 0)' if found.label == num_classes else ''
        raise ExplainedValueError(
            f'{where}.dataset: {sample} has the label {found.label}, which is not a class '
            f'index of the model (model.head.num_classes={num_classes}: 0 to '
            f'{num_classes - 1}){hint}{others}. Fix the labels of the data set, or give the '
            'head the data\'s class count (e.g. --cfg-options model.head.num_classes=N, with '
            'data_preprocessor.num_classes=N where mixup uses it).')
