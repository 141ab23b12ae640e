"""Save at SIGTERM whatever checkpoint hook the config names: our ``AtomicCheckpointHook``, a
user's subclass of it, a user's subclass of mmengine's plain ``CheckpointHook``, or none at all.

The runner only detects the stop every rank agreed on; ``loops.stop`` calls the hooks'
``on_stop_signal`` and, when none of them saved, writes ``iter_N.pth`` itself through the same
function. Real Runner, real signal (sent to this process from a hook), then ``--resume`` from
the work dir: the resumed run ends with the uninterrupted run's weights, ``torch.equal``.
Before engine/loops the runner looked for an ``AtomicCheckpointHook`` with ``isinstance`` and
saved nothing with any other hook (the ``CheckpointHook`` and ``None`` cases fail there).
"""
import os
import re
import signal

import pytest
import torch
from mmengine.hooks import CheckpointHook, Hook

from resnest_mm.engine.hooks import AtomicCheckpointHook
from resnest_mm.engine.runner import StoppedBySignalError
from resnest_mm.utils.checkpoint_io import verify
from tests.helpers.toy_runner import make_runner, toy_dataset


class UsersAtomicHook(AtomicCheckpointHook):
    """A user's own, on ours: logs each epoch checkpoint it saved."""

    def after_train_epoch(self, runner) -> None:
        super().after_train_epoch(runner)
        runner.logger.info(f'users hook: {self.last_ckpt}')


class UsersPlainHook(CheckpointHook):
    """A user's own, on mmengine's plain ``CheckpointHook``."""


HOOKS = {'ours-subclassed': lambda: UsersAtomicHook(interval=1),
         'mmengine-subclassed': lambda: UsersPlainHook(interval=1),
         'none': lambda: None}


class SigtermAt(Hook):
    """Sends SIGTERM to this process after iteration ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def _run(work_dir, checkpoint_hook, hooks=(), **kwargs):
    torch.manual_seed(0)  # the toy model's initial weights, the same in every run
    runner = make_runner(
        str(work_dir), train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=3),
        train_dataloader=dict(dataset=toy_dataset(16), batch_size=4,
                              sampler=dict(type='ResumableSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        default_hooks=dict(checkpoint=checkpoint_hook), custom_hooks=list(hooks), **kwargs)
    runner.train()
    return runner


@pytest.mark.parametrize('kind', HOOKS)
def test_sigterm_saves_and_resumes_exactly_with_any_checkpoint_hook(kind, tmp_path):
    whole = _run(tmp_path / 'whole', HOOKS[kind]()).model.state_dict()
    stopped = tmp_path / 'stopped'
    saved = stopped / 'iter_6.pth'
    with pytest.raises(StoppedBySignalError,
                       match=rf'^SIGTERM received: training stopped after iteration 6 \(epoch '
                             rf'2, batch 2/4\); saved {re.escape(str(saved))}\. Continue') as exc:
        _run(stopped, HOOKS[kind](), hooks=[SigtermAt(6)])
    assert exc.value.exit_code == 143
    assert verify(str(saved))  # written through the atomic backend, with its digest
    resumed = _run(stopped, HOOKS[kind](), resume=True)
    assert resumed.train_loop.iters_this_process == 6  # iterations 7 to 12, none again
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in whole.items())


class SavesOnStopWithoutSaying(CheckpointHook):
    """A user's checkpoint hook that saves ``iter_N.pth`` at a stop signal itself (through the
    runner, so atomic and with its digest) but never calls ``record_saved``."""

    def on_stop_signal(self, runner, signum, iters_done) -> None:
        runner.save_checkpoint(self.out_dir, f'iter_{iters_done}.pth',
                               meta=dict(epoch=runner.epoch, iter=iters_done), by_epoch=False)


class SavesNothingOnStop(CheckpointHook):
    """A user's checkpoint hook with an ``on_stop_signal`` that writes nothing."""

    def on_stop_signal(self, runner, signum, iters_done) -> None:
        runner.logger.info('users hook: nothing saved at the stop')


class CountSaves(Hook):
    """Counts the checkpoints the runner writes (mmengine calls ``before_save_checkpoint`` once
    per ``Runner.save_checkpoint``), by the iteration they hold."""

    def __init__(self) -> None:
        self.iters = []

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        self.iters.append(checkpoint['meta']['iter'])


def test_a_hook_that_saves_at_the_stop_without_saying_so_is_not_saved_over(tmp_path):
    # a stale iter_6.pth from an earlier attempt (verified, its own digest) is not taken for
    # this stop's checkpoint: a hook that writes nothing leaves the fallback to save it anew
    stale_dir = tmp_path / 'stale'
    with pytest.raises(StoppedBySignalError):
        _run(stale_dir, SavesNothingOnStop(interval=1), hooks=[SigtermAt(6)])
    old = os.stat(stale_dir / 'iter_6.pth')
    counter = CountSaves()
    with pytest.raises(StoppedBySignalError, match='saved .*iter_6.pth'):
        _run(stale_dir, SavesNothingOnStop(interval=1), hooks=[SigtermAt(6), counter])
    assert counter.iters == [4, 6]  # epoch_1.pth, then iter_6.pth written again by the loop
    assert os.stat(stale_dir / 'iter_6.pth').st_ino != old.st_ino
    # the hook writes iter_6.pth at the stop without record_saved: written once, not twice
    work_dir = tmp_path / 'once'
    counter = CountSaves()
    with pytest.raises(StoppedBySignalError,
                       match=rf'saved {re.escape(str(work_dir / "iter_6.pth"))}\. Continue'):
        _run(work_dir, SavesOnStopWithoutSaying(interval=1), hooks=[SigtermAt(6), counter])
    assert counter.iters == [4, 6]
    assert verify(str(work_dir / 'iter_6.pth'))
    assert 'written by a hook at this stop; not written again' in \
        _log_text(work_dir)


def _log_text(work_dir) -> str:
    logs = sorted(work_dir.glob('*/*.log'))
    return logs[-1].read_text()
