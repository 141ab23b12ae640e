"""``resume``: continue a run from a checkpoint, in one call whose steps come in a stated order.

What mmengine's ``Runner.resume`` lacks for us: it reads the checkpoint through
``load_checkpoint`` and applies it at once, so nothing can check or plan the checkpoint in
between (its ``meta['config']`` is executed as Python, the schedules of a changed world are
restored as saved), it takes ``last_checkpoint`` on trust, and nothing of the random state or of
the position inside an epoch comes back. Here the steps are ours and in order; what mmengine's
resume does besides (counters, seed, message hub, optimizer, schedules) is done the same way,
through the runner's public builders.
"""
from __future__ import annotations

import logging
import pickle
from typing import Optional

from mmengine.device import get_device
from mmengine.dist import broadcast_object_list
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from ...utils.checkpoint_io import CheckpointError, load_checkpoint_file
from ...utils.errors import ExplainedValueError
from ...utils.mmengine_private import randomness_cfg, set_loop_position
from .checkpoints import CheckpointList, checkpoint_folder, epoch_template
from .run_state import KEY, RunState

AUTO = 'auto'  # resume the newest checkpoint of the run's checkpoint folder that verifies


def check_resumable(checkpoint: dict, filename: str) -> None:
    """Refuse what cannot be resumed, and drop what mmengine would execute.

    mmengine's ``resume`` reads ``meta['epoch']`` and ``meta['iter']``, and runs
    ``meta['config']`` through ``Config.fromstring`` (Python code, for a GPU-count check of
    mmcv-era checkpoints); mmengine 0.10 writes ``meta['cfg']`` instead, so a ``config`` entry
    is dropped unread.

    Raises:
        CheckpointError: ``checkpoint`` is not a training checkpoint.
    """
    meta = checkpoint.get('meta')
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), int)
                                             for k in ('epoch', 'iter')):
        raise CheckpointError(
            f'{filename} is not a training checkpoint (no meta with its epoch and iteration): '
            'it can start a run with load_from (weights only), not be resumed')
    if 'config' in meta:
        meta.pop('config')
        print_log(f'{filename}: dropped meta["config"] unread (mmengine would execute it as '
                  'Python)', logger='current', level=logging.WARNING)
    if 'optimizer' not in checkpoint:
        print_log(f'{filename} holds no optimizer state: momentum starts from zero',
                  logger='current', level=logging.WARNING)


def check_position(runner, checkpoint: dict, filename: str) -> None:
    """Refuse a recorded position no run of this config can have reached.

    mmengine's resume sets the loop's counters to ``meta['epoch']`` and ``meta['iter']`` as
    they are: an epoch beyond ``max_epochs`` (or an iteration beyond an iteration-based loop's
    ``max_iters``) ends the run at once as finished, with nothing trained or saved and exit
    status 0, and a negative count trains more than asked. The run state, when there is one,
    was written with the same counters, so the two must agree.

    Raises:
        ExplainedValueError: naming the file and the impossible position.
    """
    meta = checkpoint['meta']
    epoch, iters = meta['epoch'], meta['iter']
    loop = runner.train_loop
    state = meta.get(KEY)
    position = state.get('position') if isinstance(state, dict) else None
    problem = ''
    if isinstance(epoch, bool) or isinstance(iters, bool):
        problem = 'not whole numbers'
    elif min(epoch, iters) < 0:
        problem = 'a negative count'
    elif isinstance(loop, EpochBasedTrainLoop) and epoch > loop.max_epochs:
        problem = f'more epochs than this run\'s max_epochs={loop.max_epochs}'
    elif isinstance(loop, IterBasedTrainLoop) and iters > loop.max_iters:
        problem = f'more iterations than this run\'s max_iters={loop.max_iters}'
    elif isinstance(position, dict) and (position.get('epochs_done'), position.get(
            'iters_done')) != (epoch, iters):
        problem = (f'but its run state says epoch {position.get("epochs_done")} and iteration '
                   f'{position.get("iters_done")}')
    if problem:
        shown = f'{epoch:,}' if isinstance(epoch, int) and not isinstance(epoch, bool) else epoch
        raise ExplainedValueError(
            f'{filename} records epoch {shown} and iteration {iters}, {problem}: it is not '
            'resumed (a damaged or edited checkpoint, or one of another run); start from it '
            'with load_from (weights only), or resume another checkpoint')


def _choose(runner) -> Optional[str]:
    """The newest verified checkpoint of the run's checkpoint folder, chosen by rank 0 for all
    (directory listings can differ between nodes, on NFS for a while after a restart)."""
    choice = [None, None]
    if runner.rank == 0:
        try:
            choice[0] = CheckpointList(checkpoint_folder(runner),
                                       epoch_template(runner)).newest_verified(runner.logger)
        except CheckpointError as exc:
            choice[1] = str(exc)
    if runner.distributed:
        broadcast_object_list(choice)
    if choice[1]:
        raise CheckpointError(choice[1])
    return choice[0]


def resume(runner, checkpoint: str = AUTO, *, fallback: Optional[dict] = None,
           resume_optimizer: bool = True, resume_param_scheduler: bool = True,
           map_location='default') -> Optional[str]:
    """Continue ``runner``'s training from ``checkpoint``; returns the file used, or None when
    :data:`AUTO` found nothing and there is no ``fallback``.

    The steps, in this order:

    1. **Which file.** A path is taken as given. :data:`AUTO`: rank 0 takes the newest
       checkpoint of the checkpoint hook's folder whose digest verifies (skipped ones are
       logged with their reason), and every rank loads that one. The folder has none yet:
       ``fallback`` (``dict(path=..., resume=bool)``, what the command asked for) is resumed
       or loaded as weights; without one, training starts from the beginning.
    2. **Read.** Data only (``weights_only`` with our allow-list), bounded, its digest verified
       (once: an :data:`AUTO` choice was just verified); a training checkpoint (meta with epoch
       and iteration, a position this run can have reached: :func:`check_position`),
       ``meta['config']`` dropped unread.
    3. **Plan.** :meth:`~.run_state.RunState.plan` decides how the checkpoint continues in this
       run, refusing a mid-epoch checkpoint in a changed world; in a changed world it drops the
       saved schedules and learning rates from the checkpoint.
    4. **Weights.** ``runner.load_weights`` (``after_load_checkpoint`` hooks adapt the
       checkpoint; keys and shapes must fit the model).
    5. **As mmengine's resume.** The loop's epoch and iteration counters, the seed (reseeding
       when it differs from this run's), the message hub, the optimizer, the schedules.
    6. **Position and randomness.** The plan puts back the sampler seed, the batch augments'
       own generators and the loop's position (``ResumableEpochBasedTrainLoop.resume_at``)
       with this rank's RNG states, which the loop restores at the start of its next epoch:
       after the ``before_train`` hooks, before anything of that epoch draws from them (before
       ``iter(dataloader)``). Other loops get the RNG states here, as the last step.

    Args:
        runner: The runner (``ResNeStRunner``: ``load_weights`` loads the model's part).
        checkpoint (str): A checkpoint's path, or :data:`AUTO`. Defaults to :data:`AUTO`.
        fallback (dict, optional): Where to start when :data:`AUTO` finds nothing. Defaults
            to None.
        resume_optimizer (bool): Restore the optimizer's state. Defaults to True.
        resume_param_scheduler (bool): Restore the schedules. Defaults to True.
        map_location: Where tensors go; ``'default'``: this process's device. Defaults to
            ``'default'``.

    Raises:
        CheckpointError: no checkpoint verifies, or the file is damaged, refused or not a
            training checkpoint.
        ExplainedValueError: the run state cannot be continued in this run.
    """
    verified = False
    if checkpoint == AUTO:
        path = _choose(runner)
        folder = checkpoint_folder(runner)
        if path is not None:
            runner.logger.info(f'Resuming from {path}, the newest checkpoint of the work dir')
            checkpoint, verified = path, True
        elif fallback:
            runner.logger.info(f'--resume: no checkpoint in {folder} yet; '
                               f'{"resuming" if fallback["resume"] else "loading weights"} '
                               f'from {fallback["path"]} as the command asked')
            if not fallback['resume']:
                runner.load_checkpoint(fallback['path'])
                return fallback['path']
            checkpoint = fallback['path']
        else:
            runner.logger.info(f'--resume: no checkpoint in {folder} yet: training starts '
                               'from the beginning')
            return None
    filename = checkpoint
    state = load_checkpoint_file(
        filename, map_location=get_device() if map_location == 'default' else map_location,
        unsafe=bool(runner.cfg.get('unsafe_load', False)), verified=verified)
    if not isinstance(state, dict):
        raise CheckpointError(f'{filename} holds a {type(state).__name__}, not a checkpoint '
                              '(a dict with a state_dict)')
    check_resumable(state, filename)
    plan = RunState.plan(runner, state)  # its own sentences for a run state it cannot use
    check_position(runner, state, filename)
    runner.load_weights(state, filename)
    _as_mmengine(runner, state, resume_optimizer, resume_param_scheduler)
    if plan is not None:
        plan.apply(runner)
    runner.logger.info(f'resumed epoch: {runner.epoch}, iter: {runner.iter}')
    return filename


def _as_mmengine(runner, checkpoint: dict, resume_optimizer: bool,
                 resume_param_scheduler: bool) -> None:
    """What mmengine 0.10's ``Runner.resume`` does after loading the weights (less its
    ``meta['config']`` check, dropped by :func:`check_resumable`)."""
    meta = checkpoint['meta']
    set_loop_position(runner.train_loop, meta['epoch'], meta['iter'])
    resumed_seed = meta.get('seed')
    randomness = randomness_cfg(runner)  # what set_randomness was called with
    if resumed_seed is not None and resumed_seed != randomness.get('seed'):
        if randomness.get('seed') is not None:
            runner.logger.warning(f'The value of random seed in the checkpoint "{resumed_seed}" '
                                  f'is different from the value in `randomness` config '
                                  f'"{randomness.get("seed")}"')
        randomness.update(seed=resumed_seed)
        runner.set_randomness(**randomness)
    dataset_meta = getattr(runner.train_dataloader.dataset, 'metainfo', None)
    if pickle.dumps(meta.get('dataset_meta')) != pickle.dumps(dataset_meta):
        runner.logger.warning('The dataset metainfo from the resumed checkpoint is different '
                              'from the current training dataset, please check the '
                              'correctness of the checkpoint or the training dataset.')
    runner.message_hub.load_state_dict(checkpoint['message_hub'])
    if 'optimizer' in checkpoint and resume_optimizer:
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        runner.optim_wrapper.load_state_dict(checkpoint['optimizer'])
    if resume_param_scheduler and runner.param_schedulers is None:
        runner.logger.warning('`resume_param_scheduler` is True but `self.param_schedulers` '
                              'is None, so skip resuming parameter schedulers')
        resume_param_scheduler = False
    if 'param_schedulers' in checkpoint and resume_param_scheduler:
        runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
        saved = checkpoint['param_schedulers']
        if isinstance(runner.param_schedulers, dict):
            pairs = [(s, c) for name, group in runner.param_schedulers.items()
                     for s, c in zip(group, saved[name])]
        else:
            pairs = list(zip(runner.param_schedulers, saved))
        for scheduler, state in pairs:
            scheduler.load_state_dict(state)
