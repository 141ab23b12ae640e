"""``RunState``: what an exact resume needs besides mmengine's checkpoint, in one place.

mmengine's checkpoint holds the weights, optimizer, schedulers and message hub, and the loop's
``epoch``/``iter`` counters; an epoch-based loop then *derives* where it is in an epoch from them
(``iter - epoch * len(dataloader)``), with the new run's epoch length against the old run's
counter, and nothing of the random state of the processes or of the data order survives. This
component records, at every save, in explicit terms:

* the position: complete epochs, batches done in the current epoch, iterations, samples seen,
  world size, batch size per device, dataset length and epoch length;
* every rank's global RNG states (Python, numpy, torch, its accelerator; for a save at an
  epoch's end, those the epoch ended with) and the states of batch augments with generators
  of their own (``NpuMixup``), gathered from all ranks;
* the sampler's seed.

On resume (:meth:`RunState.plan` when the checkpoint is read, :meth:`ResumePlan.apply` once the
weights, optimizer and schedules are in) it decides what a changed run may do:

* same world size, batch size and dataset: exact, bit for bit (``ResumableEpochBasedTrainLoop``
  skips the batches done without loading them and restores the RNG states before anything
  draws from them; the order is in its ``run_epoch``);
* an epoch checkpoint in a changed world (devices, batch size or dataset length): every
  remaining epoch is trained in full; the loop's iteration counter is re-based on the new epoch
  length, and the LR schedule is replayed on the new iteration count from the configured start
  (so it is where an uninterrupted run of the new shape would be);
* a mid-epoch checkpoint in a changed world: refused with a sentence (the rest of that epoch
  cannot be defined).

The shared save (:func:`~.checkpoints.save_training_checkpoint`) calls :meth:`RunState.capture`;
:func:`~.resume.resume` calls :meth:`RunState.plan` and the plan's :meth:`~ResumePlan.apply`; the
loop receives its position through ``ResumableEpochBasedTrainLoop.resume_at``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from mmengine.dist import all_gather_object, get_dist_info

from ...datasets.samplers import ResumableSampler
from ...utils.errors import ExplainedValueError
from .resumable_train_loop import ResumableEpochBasedTrainLoop
from .rng import capture_random_state, random_state_problem, restore_random_state, stateful_augments

KEY = 'run_state'  # in checkpoint['meta']
VERSION = 1


def _shape(runner) -> Dict[str, int]:
    loader = runner.train_dataloader
    return dict(world_size=get_dist_info()[1], batch_size=int(loader.batch_size),
                dataset_length=len(loader.dataset), epoch_length=len(loader))


class RunState:
    """Capture and plan the restore of a run's position and randomness (see the module)."""

    @staticmethod
    def capture(runner, epochs_done: int, batches_done: int, iters_done: int,
                samples_seen: int) -> dict:
        """The run state at a save. Collective: every rank must call it (RNG states are
        gathered from all of them).

        Args:
            runner: The runner.
            epochs_done: Complete epochs.
            batches_done: Batches done in the epoch under way (0 at an epoch's end).
            iters_done: Iterations done in the whole run.
            samples_seen: Training samples consumed by the whole run (all ranks).
        """
        sampler = runner.train_dataloader.sampler
        # at an epoch's end, the states the next epoch starts from: those the loop kept after
        # the last batch, not the current ones (a save_best rewrite runs during validation)
        epoch_end = getattr(runner.train_loop, 'epoch_end_random_state', None)
        random_state = epoch_end(epochs_done) if epoch_end and not batches_done else None
        return dict(
            version=VERSION,
            position=dict(epochs_done=int(epochs_done), batches_done=int(batches_done),
                          iters_done=int(iters_done), samples_seen=int(samples_seen),
                          **_shape(runner)),
            random_states=all_gather_object(random_state or capture_random_state()),
            batch_augments=all_gather_object(
                [a.state_dict() for a in stateful_augments(runner.model)]),
            sampler_seed=getattr(sampler, 'seed', None))

    @staticmethod
    def plan(runner, checkpoint: dict) -> Optional[ResumePlan]:
        """Decide how ``checkpoint`` (being resumed, not yet applied) continues in this run.

        Called by the runner on the checkpoint dict before mmengine's ``resume`` reads it; for
        an epoch checkpoint in a changed world it removes the scheduler states and resets the
        saved learning rates to this run's configured ones, which :meth:`ResumePlan.apply`
        then replays. Returns None for checkpoints without a run state.

        Raises:
            ExplainedValueError: a mid-epoch checkpoint in a changed world, or a run state this
                version does not know.
        """
        state = (checkpoint.get('meta') or {}).get(KEY)
        if state is None:
            return None
        version = state.get('version') if isinstance(state, dict) else None
        if version != VERSION:
            raise ExplainedValueError(
                f'the checkpoint\'s run state has version {version}; '
                f'this resnest_mm writes version {VERSION}. Resume it with the resnest_mm that '
                'wrote it, or start from it with load_from (weights only).')
        try:
            saved = {k: int(state['position'][k]) for k in (
                'epochs_done', 'batches_done', 'iters_done', 'samples_seen', 'world_size',
                'batch_size', 'dataset_length', 'epoch_length')}
            random_states = list(state['random_states'])
            augment_states = list(state['batch_augments'])
        except (KeyError, TypeError, ValueError) as exc:
            raise ExplainedValueError(
                f'the checkpoint\'s run state is malformed ({type(exc).__name__}: {exc}); it '
                'can start a run with load_from (weights only), not be resumed') from None
        implausible = _implausible(saved, getattr(runner.train_loop, 'max_epochs', None),
                                   random_states)
        if implausible:
            raise ExplainedValueError(
                f'the checkpoint\'s run state says {implausible}: it is not resumed (a damaged '
                'or foreign checkpoint); start from it with load_from (weights only), or resume '
                'another checkpoint')
        if saved['batches_done'] >= saved['epoch_length']:  # stopped at an epoch's last batch
            saved.update(epochs_done=saved['epochs_done'] + 1, batches_done=0)
        now = _shape(runner)
        changed = {k: (saved[k], now[k]) for k in ('world_size', 'batch_size', 'dataset_length')
                   if saved[k] != now[k]}
        said = ', '.join(f'{k.replace("_", " ")} {a} -> {b}' for k, (a, b) in changed.items())
        if changed and saved['batches_done']:
            raise ExplainedValueError(
                f'The checkpoint was saved {saved["batches_done"]} of {saved["epoch_length"]} '
                f'batches into epoch {saved["epochs_done"] + 1}, and this run differs from that '
                f'one ({said}), so the rest of that epoch is not defined. Resume with the same '
                'devices, batch size and data, or from an epoch checkpoint (epoch_N.pth) of '
                'the run, after which every remaining epoch trains in full.')
        if not isinstance(runner.train_loop, ResumableEpochBasedTrainLoop):
            # other loops count in iterations: mmengine restores their schedules as saved
            said = ''
        plan = ResumePlan(position=saved, changed=said, sampler_seed=state.get('sampler_seed'))
        if said:
            checkpoint.pop('param_schedulers', None)
            optimizer_state = checkpoint.get('optimizer') or {}
            current = runner.optim_wrapper.optimizer.param_groups
            for group, fresh in zip(optimizer_state.get('param_groups', []), current):
                for key in ('lr', 'initial_lr'):
                    if key in fresh:
                        group[key] = fresh[key]
        else:
            rank = get_dist_info()[0]
            if len(random_states) == saved['world_size'] and rank < len(random_states):
                plan.random_state = random_states[rank]
                plan.augment_states = augment_states[rank]
        return plan


def _implausible(saved: Dict[str, int], max_epochs: Any, random_states: list) -> str:
    """What in a checkpoint's run state no run of this config can have written ('' if
    nothing): a position beyond the configured epochs replays that many scheduler steps (an
    ``epochs_done`` of 1e8 meant 6e8 steps), and random states are restored as given."""
    if min(saved.values()) < 0 or min(saved['world_size'], saved['batch_size'],
                                      saved['epoch_length']) < 1:
        return f'a position with negative or zero counts ({saved})'
    if isinstance(max_epochs, int) and saved['epochs_done'] > max_epochs:
        return (f'{saved["epochs_done"]:,} epochs done, but this run has max_epochs='
                f'{max_epochs}')
    if saved['batches_done'] > saved['epoch_length'] or saved['iters_done'] > (
            saved['epochs_done'] + 1) * saved['epoch_length']:
        return (f'{saved["batches_done"]:,} batches and {saved["iters_done"]:,} iterations '
                f'done after {saved["epochs_done"]:,} epochs of {saved["epoch_length"]:,}')
    if len(random_states) > saved['world_size']:
        return f'{len(random_states)} random states for {saved["world_size"]} processes'
    for state in random_states:
        problem = random_state_problem(state)
        if problem:
            return f'random states that are not ({problem})'
    return ''


def recorded_position(checkpoint: Any) -> Optional[tuple]:
    """Where in its run a checkpoint was saved, as recorded inside it: a key that orders the
    checkpoints of one run (resumed, or continued in a changed world) by training done, or None
    when it records none.

    The key is ``(complete epochs, fraction of the next epoch done, samples seen, iterations)``
    from the run state, else ``(meta['epoch'], 0, 0, meta['iter'])`` (mmengine's own
    checkpoints). Iterations alone would not do: a changed world re-bases the counter.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    state = meta.get(KEY)
    position = state.get('position') if isinstance(state, dict) else None
    try:
        if isinstance(position, dict):
            epochs, batches = int(position['epochs_done']), int(position['batches_done'])
            length = max(1, int(position['epoch_length']))
            if batches >= length:  # stopped at an epoch's last batch
                epochs, batches = epochs + 1, 0
            return (epochs, batches / length, int(position['samples_seen']),
                    int(position['iters_done']))
        return (int(meta['epoch']), 0.0, 0, int(meta['iter']))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class ResumePlan:
    """How a resumed run continues; made by :meth:`RunState.plan`."""

    position: Dict[str, int]
    changed: str  # '' when the run has the shape of the one that saved
    sampler_seed: Optional[int] = None
    random_state: Optional[dict] = None
    augment_states: List[dict] = field(default_factory=list)

    def apply(self, runner) -> None:
        """Put the loop, sampler, augments and (in a changed world) the LR schedule where the
        checkpoint says; called after mmengine's ``resume``."""
        loop = runner.train_loop
        position = self.position
        sampler = runner.train_dataloader.sampler
        if self.sampler_seed is not None and getattr(sampler, 'seed', None) not in (
                None, self.sampler_seed):
            runner.logger.info(f'sampler seed {sampler.seed} -> {self.sampler_seed}, as in the '
                               'run being resumed (the same shuffling and augmentation)')
            sampler.seed = self.sampler_seed
        for augment, augment_state in zip(stateful_augments(runner.model), self.augment_states):
            augment.load_state_dict(augment_state)
        if not isinstance(loop, ResumableEpochBasedTrainLoop):
            if position['batches_done']:
                raise ExplainedValueError(
                    f'The checkpoint was saved inside epoch {position["epochs_done"] + 1}; '
                    f'resuming there exactly needs train_cfg=dict(type='
                    f"'ResumableEpochBasedTrainLoop'), not {type(loop).__name__}.")
            if self.random_state is not None:
                restore_random_state(self.random_state)
            return
        if position['batches_done'] and not isinstance(sampler, ResumableSampler):
            raise ExplainedValueError(
                f'Resuming inside epoch {position["epochs_done"] + 1} (batch '
                f'{position["batches_done"]} of {position["epoch_length"]}) needs '
                "train_dataloader.sampler=dict(type='ResumableSampler'); "
                f'{type(sampler).__name__} would replay the epoch from its start.')
        if self.changed:
            epoch_length = len(runner.train_dataloader)
            iters = position['epochs_done'] * epoch_length
            runner.logger.warning(
                f'Resuming after epoch {position["epochs_done"]} in a changed run '
                f'({self.changed}): every remaining epoch trains in full ({epoch_length} '
                f'iterations each, iteration {iters} now), and the LR schedule is replayed to '
                'that iteration from its configured start.')
            loop.resume_at(position['epochs_done'], 0, iters, position['samples_seen'], None)
            _replay_schedulers(runner, position['epochs_done'], epoch_length)
            return
        loop.resume_at(position['epochs_done'], position['batches_done'],
                       position['iters_done'], position['samples_seen'], self.random_state)


def _replay_schedulers(runner, epochs: int, epoch_length: int) -> None:
    """Step the (fresh) parameter schedulers as ``ParamSchedulerHook`` would have over
    ``epochs`` epochs of ``epoch_length`` iterations."""
    schedulers: Any = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    by_iter = [s for s in schedulers if not s.by_epoch]
    by_epoch = [s for s in schedulers if s.by_epoch]
    for _ in range(epochs):
        for _ in range(epoch_length if by_iter else 0):
            for scheduler in by_iter:
                scheduler.step()
        for scheduler in by_epoch:
            scheduler.step()
