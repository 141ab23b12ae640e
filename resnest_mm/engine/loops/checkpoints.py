"""A run's training checkpoints: where they are, which is newest and verifies, which may go, and
the one function that writes them (with the run state) whoever saves: the checkpoint hook on
schedule, the hook or the loop at a stop signal.

What mmengine lacks: its ``CheckpointHook`` keeps a list of the files *this process* wrote and
``find_latest_checkpoint`` trusts the ``last_checkpoint`` pointer; neither knows a checkpoint's
place in the run, nor whether its file is whole. Here the files are ordered by the position
recorded inside each (:func:`~.run_state.recorded_position`, never file times: a backup copied
back is new on disk, not in the run), and only files with a verified digest are resumed from.
Any ``CheckpointHook`` (ours, mmengine's, a user's subclass) names the folder and the epoch file
name; nothing here knows a hook class of ours.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

from ...utils import DiskFullError, atomic_write
from ...utils.checkpoint_io import (
    CheckpointError,
    CheckpointLoadInterruptedError,
    digest_path,
    load_checkpoint_file,
    read_digest,
    verify,
)
from ...utils.errors import ExplainedFileNotFoundError, ExplainedOSError
from ...utils.escape import escape_name
from ...utils.safe_open import UnsafeFileError, read_regular_file
from .resumable_train_loop import ResumableEpochBasedTrainLoop
from .run_state import KEY, RunState, recorded_position

LAST_CHECKPOINT = 'last_checkpoint'
MAX_POINTER_BYTES = 4096  # PATH_MAX on Linux: a path longer than that names no file
EPOCH_TEMPLATE = 'epoch_{}.pth'  # mmengine's CheckpointHook.filename_tmpl for by_epoch
ITER_TEMPLATE = 'iter_{}.pth'
SAVED_KEY = 'resnest_mm.saved'  # message hub: dict(path, iters_done) of the last shared save


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, as text for a message, or None when
    there is no pointer (or an empty one).

    The pointer is only ever quoted: nothing resumes from it (``--resume`` takes the newest
    verified checkpoint by recorded position, :class:`CheckpointList`), so a pointer naming a
    file elsewhere changes no run. It is still a file on disk, hostile until checked: read only
    when it is a regular file of at most ``MAX_POINTER_BYTES`` (a FIFO would block, a huge file
    fill memory), decoded whatever its bytes (a binary pointer is no traceback) and escaped
    (a newline or an ANSI escape in it cannot forge a log line). A pointer that cannot be read
    is ``'unreadable (<why>)'``.
    """
    path = os.path.join(work_dir, LAST_CHECKPOINT)
    try:
        data = read_regular_file(path, MAX_POINTER_BYTES, 'pointer')
    except ExplainedFileNotFoundError:
        return None
    except UnsafeFileError as exc:
        return f'unreadable ({escape_name(str(exc))})'
    text = data.decode('utf-8', 'surrogateescape').strip()
    return escape_name(text) if text else None


def checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The run's checkpoint hook: the first hook that is an mmengine ``CheckpointHook`` (ours,
    mmengine's or a user's subclass), or None."""
    return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)


def checkpoint_folder(runner) -> str:
    """Where the run's checkpoint hook saves, as mmengine's ``CheckpointHook.before_train`` will
    resolve it (resuming comes before that): the work dir, or ``out_dir/<work dir's name>``."""
    hook = checkpoint_hook(runner)
    out_dir = getattr(hook, 'out_dir', None)
    if out_dir is None or out_dir == runner.work_dir:
        return runner.work_dir
    return os.path.join(out_dir, os.path.basename(os.path.normpath(runner.work_dir)))


def epoch_template(runner) -> str:
    """The epoch checkpoints' file name template of the run's checkpoint hook."""
    hook = checkpoint_hook(runner)
    template = getattr(hook, 'filename_tmpl', None)
    return template if getattr(hook, 'by_epoch', True) and template else EPOCH_TEMPLATE


class CheckpointList:
    """The training checkpoints of one folder: ``epoch_N.pth`` (the hook's ``filename_tmpl``)
    and ``iter_N.pth`` with their digest, never ``best_*``; earliest in the run first.

    Positions are read once per file version (cached by size, time and inode; a checkpoint
    saved through :meth:`remember` is known without reading it). The reader checks for a
    regular file first (a FIFO never blocks); a stop signal during a read ends it
    (``CheckpointLoadInterruptedError``), never swallowed.

    Args:
        folder (str): Where the checkpoints are.
        filename_tmpl (str): The epoch checkpoints' name. Defaults to ``'epoch_{}.pth'``.
    """

    def __init__(self, folder: str, filename_tmpl: str = EPOCH_TEMPLATE) -> None:
        self.folder = folder
        epochs = re.escape(filename_tmpl).replace(r'\{\}', r'\d+')
        self._epoch_name = re.compile(rf'^{epochs}$')
        self._name = re.compile(rf'^(?:{epochs}|iter_\d+\.pth)$')
        # path -> (stat stamp, recorded position, why it could not be read or '')
        self._positions: Dict[str, tuple] = {}

    def paths(self) -> List[str]:
        """The checkpoints, earliest in the run first; those that record no readable position
        come first (oldest), :meth:`unreadable` says why for those that could not be read."""
        if not self.folder or not os.path.isdir(self.folder):
            return []
        found = [os.path.join(self.folder, name) for name in sorted(os.listdir(self.folder))
                 if self._name.match(name)
                 and os.path.isfile(digest_path(os.path.join(self.folder, name)))]
        positions = {path: self._position(path) for path in found}
        return sorted(found, key=lambda path: (positions[path] is not None,
                                               positions[path] or ()))

    def _position(self, path: str) -> Optional[tuple]:
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
            position = recorded_position(load_checkpoint_file(path, verified=True))
        except CheckpointLoadInterruptedError:
            raise
        except Exception as exc:  # damaged, refused, not a regular file: --resume reports it
            position, problem = None, str(exc) or type(exc).__name__
        self._positions[path] = (stamp, position, problem)
        return position

    def unreadable(self, path: str) -> str:
        """Why the position of ``path`` could not be read when :meth:`paths` last listed it
        (the reader's sentence: damaged, refused, not a regular file), or '' when it was read
        (or records none)."""
        cached = self._positions.get(path)
        return cached[2] if cached is not None else ''

    def remember(self, path: str, meta: dict) -> None:
        """Record the position of ``path``, just saved with ``meta``, without reading it."""
        try:
            st = os.stat(path)
        except OSError:
            return
        self._positions[path] = ((st.st_size, st.st_mtime_ns, st.st_ino),
                                 recorded_position(dict(meta=meta)), '')

    def prune(self, keep: str, max_keep: int) -> None:
        """Delete the earliest checkpoints (and their digests) beyond ``max_keep`` (<= 0:
        none), never ``keep`` nor the newest epoch checkpoint (the only kind a job that comes
        back with other devices can continue from)."""
        if max_keep <= 0:
            return
        kept = self.paths()
        epochs = [p for p in kept if self._epoch_name.match(os.path.basename(p))]
        for old in kept[:max(0, len(kept) - max_keep)]:
            if old == keep or (epochs and old == epochs[-1]):
                continue
            for path in (old, digest_path(old)):
                if os.path.isfile(path):
                    os.remove(path)

    def newest_verified(self, logger) -> Optional[str]:
        """The newest checkpoint whose digest verifies (logging each one skipped and why), or
        None when the folder has none. A checkpoint whose position could not be read (damaged,
        refused, not a regular file) may be the newest: it is checked first and skipped with
        its reason, never silently.

        Raises:
            CheckpointError: checkpoints exist but none verifies.
        """
        paths = list(reversed(self.paths()))
        paths = ([p for p in paths if self.unreadable(p)]
                 + [p for p in paths if not self.unreadable(p)])
        skipped = []
        for path in paths:
            try:
                if read_digest(path) is None:
                    skipped.append(f'{path} (no digest file: not written by this run\'s '
                                   'checkpoint hook, or interrupted before its digest)')
                    continue
                verify(path)  # the digest's sentence first: damaged, not a regular file
            except CheckpointError as exc:
                skipped.append(f'{path} ({exc})')
                continue
            if self.unreadable(path):  # its digest matches, its content does not load
                skipped.append(f'{path} ({self.unreadable(path)})')
                continue
            for reason in skipped:
                logger.warning(f'--resume skipped {reason}')
            return path
        if skipped:
            raise CheckpointError(
                f'--resume found no checkpoint in {self.folder} that verifies: '
                + '; '.join(skipped) + '. Give one explicitly with --resume PATH if you trust '
                'it.')
        return None


def record_saved(runner, path: str, iters_done: int) -> None:
    """Say on the message hub (``resnest_mm.saved``, not kept in checkpoints) that ``path``
    holds the run after ``iters_done`` iterations: a stop at that iteration is then saved."""
    runner.message_hub.update_info(SAVED_KEY, dict(path=path, iters_done=iters_done),
                                   resumed=False)


def batches_done(runner) -> int:
    """Batches done in the epoch under way, as the loop counts them (ours only: other loops
    resume as mmengine does, from the iteration counter)."""
    loop = runner.train_loop
    return loop.batches_done if isinstance(loop, ResumableEpochBasedTrainLoop) else 0


def save_training_checkpoint(runner, folder: str, filename: str, meta: dict, *,
                             by_epoch: bool, epochs_done: int, batches_done: int,
                             listing: Optional[CheckpointList] = None, max_keep: int = -1,
                             **save_args) -> str:
    """Write ``folder/filename`` with the run state in ``meta['run_state']``, then point
    ``last_checkpoint`` at it, then prune; returns its path. Collective: every rank calls it
    (the run state gathers every rank's RNG states; rank 0 writes).

    In this order, so that a kill at any moment leaves ``last_checkpoint`` naming a complete
    file: the file is written atomically by ``runner.save_checkpoint`` (a local folder:
    temporary file, fsync, rename, digest), ``last_checkpoint`` is replaced atomically, and
    only then are old checkpoints of ``listing`` deleted beyond ``max_keep``. The message hub's
    ``last_ckpt`` and ``resnest_mm.saved`` (path and iteration) say what was saved.

    Args:
        runner: The runner.
        folder (str): Where to write.
        filename (str): The file's name.
        meta (dict): mmengine's checkpoint meta, with ``epoch`` and ``iter``.
        by_epoch (bool): mmengine's ``save_checkpoint`` argument.
        epochs_done (int): Complete epochs.
        batches_done (int): Batches done in the epoch under way.
        listing (CheckpointList, optional): The checkpoints to count and prune. Defaults to
            None (nothing pruned).
        max_keep (int): How many checkpoints ``listing`` keeps; -1: all. Defaults to -1.
        **save_args: ``runner.save_checkpoint`` arguments (``save_optimizer``, ...).

    Raises:
        ExplainedOSError: the disk is full (the unfinished file is already gone).
    """
    final = os.path.join(folder, filename)
    iters_done = meta['iter']
    loop = runner.train_loop
    samples = loop.samples_seen if isinstance(loop, ResumableEpochBasedTrainLoop) else \
        iters_done * runner.world_size * runner.train_dataloader.batch_size
    meta = dict(meta)
    meta[KEY] = RunState.capture(runner, epochs_done=epochs_done, batches_done=batches_done,
                                 iters_done=iters_done, samples_seen=samples)
    runner.message_hub.update_info('last_ckpt', final)
    good = last_checkpoint(runner.work_dir)
    try:
        runner.save_checkpoint(folder, filename, meta=meta, by_epoch=by_epoch, **save_args)
    except DiskFullError as exc:
        raise ExplainedOSError(
            f'Iteration {iters_done} (epoch {runner.epoch + 1}): {exc}. last_checkpoint '
            f'still names the last good checkpoint, {good or "none (none was saved yet)"}. '
            'Free space on that disk (or set --work-dir elsewhere), then continue with '
            'tools/train.py CONFIG --resume.') from None
    record_saved(runner, final, iters_done)
    if not is_main_process():  # runner.save_checkpoint writes on rank 0 only
        return final
    atomic_write(os.path.join(runner.work_dir, LAST_CHECKPOINT),
                 lambda f: f.write(final.encode('utf-8')))
    if listing is not None and isinstance(get_file_backend(folder), LocalBackend):
        listing.remember(final, meta)
        # only now, with the new file complete and pointed to, may old ones go
        listing.prune(keep=final, max_keep=max_keep)
    return final
