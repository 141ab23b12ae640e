"""Stopping at a signal: the agreed stop is posted, a checkpoint of that iteration is saved by
whichever hook takes it (or here, when none does), and the run ends with one sentence.

What mmengine lacks: a Runner killed by SIGTERM loses every iteration since its last periodic
checkpoint. The runner only detects the signal every rank agrees on and calls :func:`stop`;
hooks learn of it through mmengine's custom hook methods (``Runner.call_hook`` calls any method
name a hook has): ``on_stop_signal(runner, signum, iters_done)``. A hook that saves there
says so with :func:`~.checkpoints.record_saved` (``save_training_checkpoint`` does); if none
did (a user's own checkpoint hook, mmengine's plain ``CheckpointHook``, or none at all),
:func:`stop` saves ``iter_N.pth`` through the same function, so a stop signal never ends a run
with nothing saved.
"""
from __future__ import annotations

import os
import shlex
import signal
from typing import NoReturn, Optional, Tuple

from mmengine.dist import barrier, broadcast_object_list

from ...utils.checkpoint_io import CheckpointError, verify
from ...utils.errors import ExplainedError
from .checkpoints import (
    ITER_TEMPLATE,
    SAVED_KEY,
    batches_done,
    checkpoint_hook,
    save_training_checkpoint,
)
from .resumable_train_loop import ResumableEpochBasedTrainLoop

STOP_KEY = 'resnest_mm.stop'  # message hub: dict(signum, iters_done) while a stop is under way
HOOK_METHOD = 'on_stop_signal'


def exit_status(signum: int) -> int:
    """The exit status of a run stopped by ``signum``: 128 + the signal number, as a shell
    reports a process ended by that signal (143 for SIGTERM, 138 for SIGUSR1, 130 for SIGINT)."""
    return 128 + int(signum)


class StoppedBySignalError(ExplainedError):
    """The run stopped at a signal after saving; exits with 128 + the signal's number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = exit_status(signum)


def stop(runner, signum: int, validating: Optional[int] = None) -> NoReturn:
    """Save a checkpoint of this iteration, wait until it is on disk, end the data workers and
    raise :class:`StoppedBySignalError`. Collective: every rank calls it after the same
    iteration (the signal every rank agreed on).

    In order: the stop is posted on the message hub (``resnest_mm.stop``); hooks with an
    ``on_stop_signal`` method run (``AtomicCheckpointHook`` saves ``iter_N.pth`` there, or
    names the checkpoint of this iteration it has, with
    :func:`~.checkpoints.record_saved`); if none did, ``iter_N.pth`` is saved here into the
    checkpoint hook's folder (the work dir without one), with the run state; all ranks wait
    for rank 0's write.

    Args:
        runner: The runner.
        signum (int): The agreed signal.
        validating (int, optional): During the validation of a training run: the validation
            batch just done. The rest of that validation is dropped (the saved position is the
            end of the training iterations before it). Defaults to None (after a training
            iteration).
    """
    # after_train_iter: the loop counts the iteration next; in validation it has counted
    iters_done = runner.iter + (1 if validating is None else 0)
    hub = runner.message_hub
    hub.update_info(STOP_KEY, dict(signum=signum, iters_done=iters_done), resumed=False)
    hub.update_info(SAVED_KEY, None, resumed=False)  # what a hook saves now, nothing before
    folder = getattr(checkpoint_hook(runner), 'out_dir', None) or runner.work_dir
    target = os.path.join(folder, ITER_TEMPLATE.format(iters_done))
    before = _stamp(target)
    runner.call_hook(HOOK_METHOD, signum=signum, iters_done=iters_done)
    saved = hub.get_info(SAVED_KEY)
    if saved and saved['iters_done'] == iters_done:
        path = saved['path']
    elif _written_at_this_stop(runner, target, before):
        path = target
    else:  # no hook took the stop: the same save, into the checkpoint hook's folder
        path = save_training_checkpoint(
            runner, folder, ITER_TEMPLATE.format(iters_done),
            dict(epoch=runner.epoch, iter=iters_done), by_epoch=False,
            epochs_done=runner.epoch, batches_done=batches_done(runner))
    hub.update_info(STOP_KEY, None, resumed=False)
    if runner.distributed:
        barrier()  # rank 0 writes; no rank may exit (and get the step killed) before
    # (ResNeStRunner.train ends the loader workers as this error leaves it)
    raise StoppedBySignalError(_message(runner, signum, iters_done, validating, path), signum)


def _stamp(path: str) -> Optional[Tuple[int, int, int, int]]:
    """What identifies one version of a file: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _written_at_this_stop(runner, target: str, before) -> bool:
    """Whether a hook's ``on_stop_signal`` wrote ``target`` (this iteration's ``iter_N.pth``)
    without :func:`~.checkpoints.record_saved`: the file changed during the hooks (a file
    there from an earlier attempt that reached the same iteration is not this run's state) and
    its digest verifies (a file that cannot be resumed from is written again, atomically over
    it). Rank 0 looks, every rank follows its answer (the save is collective)."""
    answer = [False]
    if runner.rank == 0:
        after = _stamp(target)
        if after is not None and after != before:
            try:
                answer[0] = verify(target)
                why = 'without a digest (--resume skips such files)'
            except CheckpointError as exc:
                why = f'but does not verify ({exc})'
            if answer[0]:
                runner.logger.info(f'{target} was written by a hook at this stop; not written '
                                   'again')
            else:
                runner.logger.warning(f'{target} was written by a hook at this stop {why}; '
                                      'writing it again')
    if runner.distributed:
        broadcast_object_list(answer)
    return bool(answer[0])


def _message(runner, signum: int, iters_done: int, validating: Optional[int],
             path: str) -> str:
    name = signal.Signals(signum).name
    loop = runner.train_loop
    where = f'epoch {runner.epoch + 1}'
    if validating is not None:
        where = (f'during validation, after batch {validating + 1}/'
                 f'{len(runner.val_dataloader)}; validation is not resumed')
    elif isinstance(loop, ResumableEpochBasedTrainLoop):
        where += f', batch {loop.batches_done}/{len(loop.dataloader)}'
    command = getattr(runner, 'continue_command', None) or shlex.join(
        ['python', 'tools/train.py', runner.cfg.filename or 'CONFIG', '--work-dir',
         runner.work_dir, '--resume'])
    message = (f'{name} received: training stopped after iteration {iters_done} ({where}); '
               f'saved {path}. Continue with: {command}')
    runner.logger.info(message)
    return message

