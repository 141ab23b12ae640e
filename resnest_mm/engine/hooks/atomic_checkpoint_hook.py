"""``AtomicCheckpointHook``: checkpoints by epoch and by iteration that a kill cannot corrupt."""
from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from ...registry import HOOKS
from ...utils import DiskFullError, atomic_write
from ...utils.checkpoint_io import CheckpointLoadInterruptedError, digest_path, load_checkpoint_file
from ...utils.errors import ExplainedOSError, ExplainedValueError
from ..runner import ResumableEpochBasedTrainLoop, run_state

LAST_CHECKPOINT = 'last_checkpoint'


def _batches_done(runner) -> int:
    """Batches done in the epoch under way, as the loop counts them (ours only: other loops
    resume as mmengine does, from the iteration counter)."""
    loop = runner.train_loop
    return loop.batches_done if isinstance(loop, ResumableEpochBasedTrainLoop) else 0


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, or None."""
    try:
        with open(os.path.join(work_dir, LAST_CHECKPOINT), encoding='utf-8') as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


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
    * **The run state** (:class:`~resnest_mm.engine.runner.run_state.RunState`: position, every
      rank's RNG states, batch-augment generators, sampler seed) in ``meta['run_state']``.
    * **A full disk** stops the run in one sentence naming the file, the bytes needed and free,
      and the last good checkpoint; the unfinished file is already gone and
      ``last_checkpoint`` still names that good one.

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
        self._resolved_out_dir: Optional[str] = None
        # path -> (stat stamp, recorded position, why it could not be read or '')
        self._positions: Dict[str, tuple] = {}

    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._resolved_out_dir = self.out_dir
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

    def save_iteration(self, runner, iters_done: int) -> str:
        """Save ``iter_N.pth`` (``N = iters_done``, the run's iterations so far), unless that
        iteration was saved already; returns the checkpoint's path. Collective: every rank calls
        it."""
        filename = f'iter_{iters_done}.pth'
        if self._saved_at == iters_done:  # e.g. epoch_N.pth, just before a validation
            return self.last_ckpt
        self._save(runner, filename, dict(epoch=runner.epoch, iter=iters_done),
                   by_epoch=False, epochs_done=runner.epoch, batches_done=_batches_done(runner))
        return os.path.join(self.out_dir, filename) if self._local() else self.last_ckpt

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        if self.by_epoch:  # after an epoch's end, or during the next validation (save_best):
            # mmengine's meta['epoch'] is right in both, runner.epoch has moved on in the second
            self._save(runner, self.filename_tmpl.format(step), meta, by_epoch=True,
                       epochs_done=meta['epoch'], batches_done=0)
        else:
            self._save(runner, self.filename_tmpl.format(step), meta, by_epoch=False,
                       epochs_done=runner.epoch, batches_done=_batches_done(runner))

    def _save(self, runner, filename: str, meta: dict, by_epoch: bool, epochs_done: int,
              batches_done: int) -> None:
        final = os.path.join(self.out_dir, filename)
        iters_done = meta['iter']
        loop = runner.train_loop
        samples = loop.samples_seen if isinstance(loop, ResumableEpochBasedTrainLoop) else \
            iters_done * runner.world_size * runner.train_dataloader.batch_size
        meta = dict(meta)
        meta[run_state.KEY] = run_state.RunState.capture(
            runner, epochs_done=epochs_done, batches_done=batches_done, iters_done=iters_done,
            samples_seen=samples)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)
        good = last_checkpoint(runner.work_dir)
        try:
            runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                                   save_optimizer=self.save_optimizer,
                                   save_param_scheduler=self.save_param_scheduler, meta=meta,
                                   by_epoch=by_epoch, backend_args=self.backend_args,
                                   **self.args)
        except DiskFullError as exc:
            raise ExplainedOSError(
                f'Iteration {iters_done} (epoch {runner.epoch + 1}): {exc}. last_checkpoint '
                f'still names the last good checkpoint, {good or "none (none was saved yet)"}. '
                'Free space on that disk (or set --work-dir elsewhere), then continue with '
                'tools/train.py CONFIG --resume.') from None
        self._saved_at = iters_done
        if not is_main_process():  # runner.save_checkpoint writes on rank 0 only
            return
        atomic_write(os.path.join(runner.work_dir, LAST_CHECKPOINT),
                     lambda f: f.write(final.encode('utf-8')))
        if self._local():
            self._remember_position(final, meta)
        # only now, with the new file complete and pointed to, may old ones go
        self._prune(keep=final)

    def checkpoint_dir(self, runner) -> str:
        """Where this hook saves, also before ``before_train`` has resolved ``out_dir`` (the
        runner resumes earlier): the work dir, or ``out_dir/<work dir's name>`` as mmengine's
        ``CheckpointHook.before_train`` makes it."""
        if self._resolved_out_dir is not None:
            return self._resolved_out_dir
        if self.out_dir is None or self.out_dir == runner.work_dir:
            return runner.work_dir
        return os.path.join(self.out_dir, os.path.basename(os.path.normpath(runner.work_dir)))

    def training_checkpoints(self, folder: Optional[str] = None) -> List[str]:
        """This hook's checkpoints in ``folder`` (default ``out_dir``): ``epoch_N.pth``,
        ``iter_N.pth`` with their digest, never ``best_*``; earliest in the run first, by the
        position recorded inside each (:func:`~..runner.run_state.recorded_position`), never
        by file times (a backup copied back is new on disk, not in the run). Files that record
        no readable position come first (oldest); :meth:`unreadable` says why for those that
        could not be read (``--resume`` reports them, never drops them silently)."""
        folder = folder or self.out_dir
        if not folder or not os.path.isdir(folder):
            return []
        template = re.escape(self.filename_tmpl).replace(r'\{\}', r'\d+')
        pattern = re.compile(rf'^(?:{template}|iter_\d+\.pth)$')
        found = [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                 if pattern.match(name) and os.path.isfile(digest_path(
                     os.path.join(folder, name)))]
        positions = {path: self._position(path) for path in found}
        return sorted(found, key=lambda path: (positions[path] is not None,
                                               positions[path] or ()))

    def _position(self, path: str) -> Optional[tuple]:
        """The position ``path`` records, read once per file version (cached by its size,
        time and inode; a checkpoint this hook saved is known without reading it). The
        reader checks for a regular file first (a FIFO never blocks); a stop signal during the
        read ends it (:class:`CheckpointLoadInterruptedError`), never swallowed."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        cached = self._positions.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        problem = ''
        try:
            position = run_state.recorded_position(load_checkpoint_file(path, verified=True))
        except CheckpointLoadInterruptedError:
            raise
        except Exception as exc:  # damaged, refused, not a regular file: --resume reports it
            position, problem = None, str(exc) or type(exc).__name__
        self._positions[path] = (stamp, position, problem)
        return position

    def unreadable(self, path: str) -> str:
        """Why the position of ``path`` could not be read when :meth:`training_checkpoints`
        last listed it (the reader's sentence: damaged, refused, not a regular file), or ''
        when it was read (or records none)."""
        cached = self._positions.get(path)
        return cached[2] if cached is not None else ''

    def _remember_position(self, path: str, meta: dict) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        self._positions[path] = ((st.st_size, st.st_mtime_ns, st.st_ino),
                                 run_state.recorded_position(dict(meta=meta)), '')

    def _prune(self, keep: str) -> None:
        if self.max_keep_ckpts <= 0:
            return
        kept = self.training_checkpoints()
        # the newest epoch checkpoint stays whatever the count: a job that comes back with
        # other devices can only continue from an epoch's end
        template = re.escape(self.filename_tmpl).replace(r'\{\}', r'\d+')
        epochs = [p for p in kept if re.match(rf'^{template}$', os.path.basename(p))]
        for old in kept[:max(0, len(kept) - self.max_keep_ckpts)]:
            if old == keep or (epochs and old == epochs[-1]):
                continue
            for path in (old, digest_path(old)):
                if os.path.isfile(path):
                    os.remove(path)
