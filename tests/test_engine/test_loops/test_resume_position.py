"""A checkpoint's recorded position is data to check before it is resumed: ``meta['epoch']`` and
``meta['iter']`` become the loop's counters. Before, a checkpoint whose meta said epoch
1,000,000,000 (or a negative iteration, or a position its own run state contradicts) resumed as
a finished run: no iteration trained, nothing saved, exit 0, no word."""
import pytest
import torch

from resnest_mm.engine.loops.run_state import KEY
from resnest_mm.utils.errors import ExplainedValueError
from resnest_mm.utils.fileio import atomic_save
from tests.helpers.toy_runner import make_runner

HOOK = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1))


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """The checkpoint of a real 1-epoch run (4 iterations), with its run state."""
    work_dir = tmp_path_factory.mktemp('first')
    make_runner(str(work_dir), default_hooks=HOOK,
                train_cfg=dict(by_epoch=True, max_epochs=1)).train()
    # our own file, just written: read whole to make edited copies of it
    return torch.load(work_dir / 'epoch_1.pth', weights_only=False)


CASES = {
    'epoch beyond max_epochs, no run state': (
        dict(epoch=1_000_000_000), True,
        'epoch 1,000,000,000 and iteration 4, more epochs than this run\'s max_epochs=2'),
    'negative iteration': (dict(iter=-3), True, 'epoch 1 and iteration -3, a negative count'),
    'a bool for the epoch': (dict(epoch=True), True,
                             'epoch True and iteration 4, not whole numbers'),
    'meta against its run state': (
        dict(epoch=2, iter=8), False,
        'epoch 2 and iteration 8, but its run state says epoch 1 and iteration 4'),
}


@pytest.mark.parametrize('case', CASES)
def test_an_impossible_position_is_not_resumed(case, saved, tmp_path):
    change, drop_state, what = CASES[case]
    checkpoint = dict(saved, meta=dict(saved['meta'], **change))
    if drop_state:
        checkpoint['meta'].pop(KEY)
    path = str(tmp_path / 'edited.pth')
    atomic_save(checkpoint, path, digest=True)
    runner = make_runner(str(tmp_path / 'work'), default_hooks=HOOK, resume=True,
                         load_from=path, train_cfg=dict(by_epoch=True, max_epochs=2))
    with pytest.raises(ExplainedValueError) as refused:
        runner.train()
    assert str(refused.value) == (
        f'{path} records {what}: it is not resumed (a damaged or edited checkpoint, or one of '
        'another run); start from it with load_from (weights only), or resume another '
        'checkpoint')
