"""``AtomicCheckpointHook``: checkpoints by epoch and by iteration that a kill cannot corrupt."""
from __future__ import annotations

import glob
import os
from typing import Optional

from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from ...registry import HOOKS
from ...utils import atomic_write
from ...utils.errors import ExplainedValueError
from ..runner.resumable_train_loop import capture_random_state, restore_random_state

PART_SUFFIX = '.part'


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stateful_augments(runner) -> list:
    """Batch augments with their own generators (``NpuMixup``) in the model's preprocessor."""
    model = getattr(runner.model, 'module', runner.model)
    batch_augments = getattr(getattr(model, 'data_preprocessor', None), 'batch_augments', None)
    augments = getattr(batch_augments, 'augments', [])
    return [a for a in augments if hasattr(a, 'state_dict') and hasattr(a, 'load_state_dict')]


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with what it lacks for long runs.

    * **Atomic files.** mmengine writes ``epoch_N.pth`` in place and deletes the oldest kept
      checkpoint *before* writing the new one: killed mid-write, a run can be left with a
      truncated file, or with no checkpoint at all (``max_keep_ckpts=1``). Here the file is
      written as ``.epoch_N.pth.part``, flushed to disk and renamed; ``last_checkpoint`` is then
      replaced atomically, and only then are checkpoints beyond ``max_keep_ckpts`` deleted. A
      kill at any moment leaves ``last_checkpoint`` naming a complete file. Left-over ``.part``
      files are removed when training starts.
    * **Iteration checkpoints inside epoch-based runs** (``iter_interval``): ``iter_N.pth``
      every N iterations, counted in the same ``max_keep_ckpts``, resumed mid-epoch by
      ``ResumableEpochBasedTrainLoop``.
    * **RNG states** of every process (Python, numpy, torch, its CUDA device) in
      ``meta['random_state']``, the own generators of batch augments such as ``NpuMixup``, the
      sampler's seed and the position in the epoch, restored on ``--resume`` (the global RNGs
      by the loop, once its data iterator exists). A mid-epoch checkpoint resumed with another
      world size or batch size is refused with a sentence.

    ``save_best`` checkpoints still go through mmengine's own (in-place) writing.

    Remote ``out_dir`` backends fall back to mmengine's writing.

    Args:
        iter_interval (int): Also save every this many iterations when ``by_epoch``; -1: never.
        **kwargs: mmengine ``CheckpointHook`` arguments (``interval``, ``max_keep_ckpts``, ...).
    """

    def __init__(self, *args, iter_interval: int = -1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rank_states: Optional[list] = None
        self._position: Optional[dict] = None
        if iter_interval == 0 or iter_interval < -1:
            raise ExplainedValueError(f'AtomicCheckpointHook.iter_interval={iter_interval}: use a '
                                      'positive number of iterations, or -1 for none')
        self.iter_interval = iter_interval

    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._local() and is_main_process():
            for stale in glob.glob(os.path.join(self.out_dir, '.*' + PART_SUFFIX)):
                os.remove(stale)
                print_log(f'removed {stale}: a checkpoint whose writing was interrupted',
                          logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        # Gathered from every rank in _save (this hook point runs on rank 0 only); a save that
        # did not come through _save (save_best) records rank 0's alone.
        meta['random_state'] = self._rank_states or [capture_random_state()]
        self._rank_states = None
        meta['batch_augment_states'] = [a.state_dict() for a in _stateful_augments(runner)]
        meta['sampler_seed'] = getattr(runner.train_dataloader.sampler, 'seed', None)
        if self._position is not None:
            meta['epoch_position'] = self._position

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        if 'random_state' not in meta or not getattr(runner, '_resume', False):
            return  # loading weights (load_from) does not continue a run's randomness
        loop = runner.train_loop
        rank, world_size = get_dist_info()
        position = meta.get('epoch_position')
        if position is not None:
            batch_size = runner.train_dataloader.batch_size
            if position['done'] and (position['world_size'], position['batch_size']) != \
                    (world_size, batch_size):
                raise ExplainedValueError(
                    f'The checkpoint was saved {position["done"]} iterations into an epoch by '
                    f'{position["world_size"]} process(es) with batch {position["batch_size"]} '
                    f'each; this run has {world_size} with batch {batch_size}, so the rest of '
                    'that epoch cannot be picked up exactly. Resume with the same devices and '
                    'batch size, or from an epoch checkpoint (epoch_N.pth).')
            if hasattr(loop, 'resume_position'):
                loop.resume_position(position['done'])
        sampler = runner.train_dataloader.sampler
        saved_seed = meta.get('sampler_seed')
        if saved_seed is not None and getattr(sampler, 'seed', saved_seed) != saved_seed:
            runner.logger.info(f'sampler seed {sampler.seed} -> {saved_seed}, as in the run '
                               'being resumed (the same shuffling and augmentation)')
            sampler.seed = saved_seed
        augments = _stateful_augments(runner)
        for augment, augment_state in zip(augments, meta.get('batch_augment_states', [])):
            augment.load_state_dict(augment_state)
        states = meta['random_state']
        if isinstance(states, dict):  # one process's state
            states = [states]
        if len(states) != world_size:
            runner.logger.warning(f'the checkpoint holds the RNG states of {len(states)} '
                                  f'process(es), this run has {world_size}: not restored')
            return
        if hasattr(loop, 'resume_random_state'):
            loop.resume_random_state(states[rank])
        else:
            restore_random_state(states[rank])

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if self.by_epoch and self.iter_interval > 0 and \
                self.every_n_train_iters(runner, self.iter_interval):
            step = runner.iter + 1
            runner.logger.info(f'Saving checkpoint at {step} iterations')
            self._save(runner, f'iter_{step}.pth', dict(epoch=runner.epoch, iter=step),
                       by_epoch=False)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        self._save(runner, self.filename_tmpl.format(step), meta, by_epoch=self.by_epoch)

    def _save(self, runner, filename: str, meta: dict, by_epoch: bool) -> None:
        final = os.path.join(self.out_dir, filename)
        part_name = f'.{filename}{PART_SUFFIX}'
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)
        # Every rank is here (the hook runs everywhere; only the writing is rank 0's): collect
        # each process's RNG states, and where in its epoch this checkpoint stands.
        self._rank_states = all_gather_object(capture_random_state())
        epoch_length = len(runner.train_dataloader)
        done = 0 if by_epoch else meta['iter'] - runner.epoch * epoch_length
        self._position = dict(done=done, world_size=get_dist_info()[1],
                              batch_size=runner.train_dataloader.batch_size)
        # File names, listed before saving so that the checkpoint's own record of the kept
        # files includes itself; joined to this run's out_dir, so that a work dir copied
        # elsewhere and resumed never prunes the original's files.
        kept = [n for n in runner.message_hub.runtime_info.get('kept_checkpoints', [])
                if n != filename and os.path.basename(n) == n] + [filename]
        runner.message_hub.update_info('kept_checkpoints', kept)
        runner.save_checkpoint(self.out_dir, part_name, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():  # runner.save_checkpoint writes on rank 0 only
            return
        part = os.path.join(self.out_dir, part_name)
        _fsync(part)
        os.replace(part, final)
        _fsync(self.out_dir)  # the rename itself reaches the disk
        atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'),
                     lambda f: f.write(final.encode('utf-8')))
        # only now, with the new file complete and pointed to, may old ones go
        while self.max_keep_ckpts > 0 and len(kept) > self.max_keep_ckpts:
            old = os.path.join(self.out_dir, kept.pop(0))
            if os.path.isfile(old):
                os.remove(old)
        runner.message_hub.update_info('kept_checkpoints', kept)
