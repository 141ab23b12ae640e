"""``AtomicCheckpointHook``: checkpoints by epoch and by iteration that a kill cannot corrupt."""
from __future__ import annotations

import glob
import os
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from ...registry import HOOKS
from ...utils.errors import ExplainedValueError
from ..loops.checkpoints import (
    ITER_TEMPLATE,
    CheckpointList,
    batches_done,
    record_saved,
    save_training_checkpoint,
)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with what it lacks for long runs.

    * **Atomic, verified files.** mmengine writes ``epoch_N.pth`` in place and deletes the oldest
      kept checkpoint *before* writing the new one: killed mid-write, a run can be left with a
      truncated file, or with no checkpoint at all (``max_keep_ckpts=1``). Here the runner
      writes each file through ``AtomicLocalBackend`` (temporary file, fsync, rename, SHA-256 in
      ``NAME.sha256``); ``last_checkpoint`` is then replaced atomically, and only then are old
      checkpoints deleted. A kill at any moment leaves ``last_checkpoint`` naming a complete
      file. Left-over temporary files are removed when training starts.
    * **Kept over the whole run.** ``max_keep_ckpts`` counts the run's checkpoints in
      ``out_dir`` in the order of training they hold, whichever process
      wrote them: a run resumed many times keeps as many files as one that never stopped, and
      a checkpoint saved at a signal counts like any other; "oldest" is by the position each
      file records (epochs, batches, samples), never by file times. Only files this hook's names
      (``epoch_N.pth``, ``iter_N.pth``) with a digest are counted or deleted, and the newest
      epoch checkpoint is always kept (the only kind a changed world can resume from).
    * **Iteration checkpoints inside epoch-based runs** (``iter_interval``): ``iter_N.pth``
      every N iterations, resumed mid-epoch by ``ResumableEpochBasedTrainLoop``.
    * **The run state** (:class:`~resnest_mm.engine.loops.run_state.RunState`: position, every
      rank's RNG states, batch-augment generators, sampler seed) in ``meta['run_state']``.
    * **A checkpoint at a stop signal**: ``iter_N.pth`` of the iteration every rank stopped
      after (:meth:`on_stop_signal`, called by :func:`resnest_mm.engine.loops.stop`).
    * **A full disk** stops the run in one sentence naming the file, the bytes needed and free,
      and the last good checkpoint; the unfinished file is already gone and
      ``last_checkpoint`` still names that good one.

    Writing, listing and pruning are :mod:`resnest_mm.engine.loops.checkpoints`' (the same
    function saves at a stop signal when a run has another checkpoint hook).
    ``save_best`` checkpoints keep mmengine's own bookkeeping. Remote ``out_dir`` backends fall
    back to mmengine's writing.

    Args:
        iter_interval (int): Also save every this many iterations when ``by_epoch``; -1: never.
        **kwargs: mmengine ``CheckpointHook`` arguments (``interval``, ``max_keep_ckpts``, ...).
    """

    def __init__(self, *args, iter_interval: int = -1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if iter_interval == 0 or iter_interval < -1:
            raise ExplainedValueError(f'AtomicCheckpointHook.iter_interval={iter_interval}: use a '
                                      'positive number of iterations, or -1 for none')
        self.iter_interval = iter_interval
        self._saved_at: Optional[int] = None  # the iteration count of the last save
        self.checkpoints: Optional[CheckpointList] = None  # out_dir's, once it is resolved

    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self.checkpoints = CheckpointList(self.out_dir, self.filename_tmpl)
        if self._local() and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for stale in glob.glob(os.path.join(folder, '.*.part')):
                    if os.path.isdir(stale) and not os.path.islink(stale):
                        runner.logger.warning(f'left {stale} alone: a folder, not a file whose '
                                              'writing was interrupted')
                        continue
                    os.remove(stale)
                    runner.logger.info(f'removed {stale}: a file whose writing was interrupted')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if self.by_epoch and self.iter_interval > 0 and \
                self.every_n_train_iters(runner, self.iter_interval):
            runner.logger.info(f'Saving checkpoint at {runner.iter + 1} iterations')
            self.save_iteration(runner, iters_done=runner.iter + 1)

    def on_stop_signal(self, runner, signum: int, iters_done: int) -> None:
        """A stop signal every rank agreed on (mmengine calls custom hook methods by name):
        save ``iter_N.pth`` of the iteration the run stops after (or name the checkpoint of
        that iteration already saved)."""
        record_saved(runner, self.save_iteration(runner, iters_done=iters_done), iters_done)

    def save_iteration(self, runner, iters_done: int) -> str:
        """Save ``iter_N.pth`` (``N = iters_done``, the run's iterations so far), unless that
        iteration was saved already; returns the checkpoint's path. Collective: every rank calls
        it."""
        if self._saved_at == iters_done:  # e.g. epoch_N.pth, just before a validation
            return self.last_ckpt
        return self._save(runner, ITER_TEMPLATE.format(iters_done),
                          dict(epoch=runner.epoch, iter=iters_done), by_epoch=False,
                          epochs_done=runner.epoch, batches_done=batches_done(runner))

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        if self.by_epoch:  # after an epoch's end, or during the next validation (save_best):
            # mmengine's meta['epoch'] is right in both, runner.epoch has moved on in the second
            self._save(runner, self.filename_tmpl.format(step), meta, by_epoch=True,
                       epochs_done=meta['epoch'], batches_done=0)
        else:
            self._save(runner, self.filename_tmpl.format(step), meta, by_epoch=False,
                       epochs_done=runner.epoch, batches_done=batches_done(runner))

    def _save(self, runner, filename: str, meta: dict, by_epoch: bool, epochs_done: int,
              batches_done: int) -> str:
        self.last_ckpt = save_training_checkpoint(
            runner, self.out_dir, filename, meta, by_epoch=by_epoch, epochs_done=epochs_done,
            batches_done=batches_done, listing=self.checkpoints,
            max_keep=self.max_keep_ckpts, file_client_args=self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            backend_args=self.backend_args, **self.args)
        self._saved_at = meta['iter']
        return self.last_ckpt
