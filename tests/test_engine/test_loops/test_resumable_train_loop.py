"""ResumableEpochBasedTrainLoop and RunState with the real Runner: the position a checkpoint
records (never derived from the new epoch length), what a changed run may do with it, and the
sentences for what it may not."""
import os

import pytest
import torch

from resnest_mm.utils import atomic_save
from resnest_mm.utils.errors import ExplainedValueError
from tests.helpers.toy_runner import make_runner, toy_dataset

LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
# a warm-up then a cosine, both counted in iterations: a schedule whose place matters
SCHEDULE = [dict(type='LinearLR', start_factor=0.25, by_epoch=True, begin=0, end=1,
                 convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=1, end=4,
                 convert_to_iter_based=True)]


def _loader(batch_size=4, n=16, sampler='ResumableSampler'):
    return dict(dataset=toy_dataset(n), batch_size=batch_size,
                sampler=dict(type=sampler, shuffle=True), collate_fn=dict(type='default_collate'))


def _hooks(**checkpoint):
    return dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, **checkpoint))


class LrTrace:
    """Records (iteration, lr) after every iteration."""

    def __init__(self):
        from mmengine.hooks import Hook

        rows = self.rows = []

        class Trace(Hook):
            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                rows.append((runner.iter + 1, runner.optim_wrapper.get_lr()['lr'][0]))

        self.hook = Trace()


def test_resume_at_skips_the_done_batches(tmp_path):
    runner = make_runner(str(tmp_path), train_cfg=LOOP, train_dataloader=_loader())
    runner.train_loop.resume_at(0, 2, 2, 8, None)  # 2 of 4 batches of epoch 1 done
    runner.train()
    assert runner.iter == 8 and runner.epoch == 2  # 2 + 2 left in epoch 1, then 4
    assert runner.train_loop.iters_this_process == 6
    assert runner.train_loop.samples_seen == 32


def _iteration_checkpoint(tmp_path, **position):
    """iter_2.pth of a 1-process run (2 of 4 batches into epoch 1), with its recorded position
    changed as if another run had saved it, digest rewritten."""
    make_runner(str(tmp_path), train_cfg=LOOP, train_dataloader=_loader(),
                default_hooks=_hooks(by_epoch=False)).train()
    path = tmp_path / 'iter_2.pth'
    checkpoint = torch.load(path, weights_only=True)
    recorded = checkpoint['meta']['run_state']['position']
    assert recorded == dict(epochs_done=0, batches_done=2, iters_done=2, samples_seen=8,
                            world_size=1, batch_size=4, dataset_length=16, epoch_length=4)
    recorded.update(position)
    atomic_save(checkpoint, str(path), digest=True)
    return str(path)


def test_mid_epoch_checkpoint_of_another_world_size_is_refused(tmp_path):
    path = _iteration_checkpoint(tmp_path, world_size=2)
    runner = make_runner(str(tmp_path / 'again'), train_cfg=LOOP, train_dataloader=_loader(),
                         default_hooks=_hooks(by_epoch=False), resume=True, load_from=path)
    with pytest.raises(ExplainedValueError, match=r'saved 2 of 4 batches into epoch 1, and '
                                                  r'this run differs from that one \(world size '
                                                  r'2 -> 1\).*epoch checkpoint'):
        runner.train()


def test_mid_epoch_checkpoint_with_another_batch_or_dataset_is_refused(tmp_path):
    path = _iteration_checkpoint(tmp_path)
    for loader, said in ((_loader(batch_size=8), 'batch size 4 -> 8'),
                         (_loader(n=10), 'dataset length 16 -> 10')):
        runner = make_runner(str(tmp_path / said.split()[0]), train_cfg=LOOP,
                             train_dataloader=loader, resume=True, load_from=path)
        with pytest.raises(ExplainedValueError, match=said):
            runner.train()


def test_a_sampler_that_cannot_skip_is_named(tmp_path):
    path = _iteration_checkpoint(tmp_path)
    runner = make_runner(str(tmp_path / 'again'), train_cfg=LOOP,
                         train_dataloader=_loader(sampler='DefaultSampler'), resume=True,
                         load_from=path)
    with pytest.raises(ValueError, match=r"Resuming inside epoch 1 \(batch 2 of 4\) needs "
                                         r"train_dataloader.sampler=dict\(type='ResumableSampler"
                                         r"'\); DefaultSampler would replay"):
        runner.train()


def test_an_epoch_checkpoint_in_a_changed_world_trains_every_remaining_epoch(tmp_path):
    """Resumed at batch 8 from an epoch checkpoint written at batch 4: the remaining epochs
    train in full (on main this trained nothing), and the LR at every iteration is the one an
    uninterrupted batch-8 run has there."""
    loop = dict(LOOP, max_epochs=4)
    make_runner(str(tmp_path / 'b4'), train_cfg=loop, train_dataloader=_loader(4),
                param_scheduler=SCHEDULE, default_hooks=_hooks()).train()
    fresh = LrTrace()
    make_runner(str(tmp_path / 'b8'), train_cfg=loop, train_dataloader=_loader(8),
                param_scheduler=SCHEDULE, custom_hooks=[fresh.hook]).train()
    resumed = LrTrace()
    runner = make_runner(str(tmp_path / 'resumed'), train_cfg=loop, train_dataloader=_loader(8),
                         param_scheduler=SCHEDULE, custom_hooks=[resumed.hook], resume=True,
                         load_from=str(tmp_path / 'b4' / 'epoch_2.pth'))
    runner.train()
    assert runner.train_loop.iters_this_process == 4  # epochs 3 and 4, 2 iterations each
    assert runner.iter == 8 and runner.epoch == 4
    assert resumed.rows == fresh.rows[4:]  # iterations 5..8, the same LR bit for bit
    assert runner.train_loop.samples_seen == 2 * 16 + 2 * 16


def test_summary_counts_the_iterations_this_process_trained(tmp_path):
    import json
    loop = dict(LOOP, max_epochs=3)
    make_runner(str(tmp_path / 'first'), train_cfg=dict(LOOP, max_epochs=1),
                train_dataloader=_loader(), default_hooks=_hooks()).train()
    runner = make_runner(str(tmp_path / 'second'), train_cfg=loop, train_dataloader=_loader(),
                         default_hooks=_hooks(), custom_hooks=[dict(type='RunSummaryHook')],
                         resume=True, load_from=str(tmp_path / 'first' / 'epoch_1.pth'))
    runner.train()
    summary = json.load(open(os.path.join(str(tmp_path / 'second'), 'summary.json')))
    assert (summary['iters'], summary['iters_this_process'], summary['epochs']) == (12, 8, 3)


def test_iteration_interval_is_checked():
    from resnest_mm.engine.hooks import AtomicCheckpointHook
    with pytest.raises(ValueError, match='iter_interval=0'):
        AtomicCheckpointHook(iter_interval=0)


def test_random_state_survives_a_weights_only_load():
    import io
    import random

    import numpy as np

    from resnest_mm.engine.loops import capture_random_state, restore_random_state
    buf = io.BytesIO()
    torch.save(dict(meta=dict(random_state=capture_random_state())), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)['meta']['random_state']  # as tools/test.py
    expected = (np.random.rand(), random.random(), torch.rand(1).item())
    restore_random_state(state)
    assert (np.random.rand(), random.random(), torch.rand(1).item()) == expected
