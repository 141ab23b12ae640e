"""``ResumableEpochBasedTrainLoop``: mmengine's epoch loop that resumes mid-epoch exactly and
stops cleanly when the run is asked to."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from mmengine.runner import EpochBasedTrainLoop

from ...registry import LOOPS
from ...utils.errors import ExplainedValueError
from ...utils.mmengine_private import set_loop_position
from .rng import capture_random_state, restore_random_state

# torch's message for a BatchNorm in training mode given one value per channel
ONE_VALUE_PER_CHANNEL = 'Expected more than 1 value per channel when training'


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that continues an epoch at the batch its checkpoint was taken.

    What mmengine's loop lacks: resumed from an iteration checkpoint, it replays the whole epoch
    from its first batch (so samples are seen twice and the epoch has too many iterations). Here
    the position comes from the checkpoint's own record (:class:`~.run_state.RunState`, given
    through :meth:`resume_at`), never from the iteration counter and the new epoch length: the
    sampler (``ResumableSampler``) skips the batches already done without loading them, and the
    RNG states come back where the checkpoint was taken (see :meth:`run_epoch` for the order),
    so the rest of the run is what it would have been without the interruption, from an
    iteration checkpoint and from an epoch checkpoint alike.

    What else would shift the global RNGs, and so everything drawn from them later (mmpretrain's
    ``Mixup``): creating the epoch's data iterator draws its workers' base seed from torch's RNG,
    but with persistent workers only in a process's first epoch, so a resumed process would
    draw where the uninterrupted one did not; and what runs between two epochs (validation
    creates its own iterator) happens in one run and not in the other. So the iterator is
    created without moving torch's RNG, and every epoch starts from the RNG states the epoch
    before it ended with (:meth:`epoch_end_random_state`, which is also what an epoch
    checkpoint records).

    A batch of one sample, which no BatchNorm in training mode can take (the last batch of a
    data set of ``k * batch + 1`` samples without ``drop_last``), stops the run with a sentence
    naming the data set size, the batch size and ``train_dataloader.drop_last``.

    It also counts the iterations this process trained
    (``iters_this_process``) and the samples the whole run has seen (``samples_seen``, kept in
    the run state). Arguments are mmengine's.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_random_state: Optional[dict] = None
        self._epoch_end: Optional[Tuple[int, dict]] = None  # (epochs done, RNG states then)
        self._resume_batches = 0
        self._batches_done = 0
        self.samples_seen = 0
        self.iters_this_process = 0

    def resume_at(self, epochs_done: int, batches_done: int, iters_done: int,
                  samples_seen: int, random_state: Optional[dict]) -> None:
        """Continue after ``epochs_done`` epochs and ``batches_done`` batches of the next one,
        with this rank's RNG states ``random_state`` (None: leave them), which :meth:`run_epoch`
        restores before anything draws from them.

        Called by :func:`~.resume.resume` (whose docstring gives the order of a resume) as its
        last step; then ``before_train`` hooks run, and :meth:`run_epoch` restores the RNG
        states (whatever drew from them since is undone).
        """
        set_loop_position(self, epochs_done, iters_done)
        self._resume_batches = batches_done
        self.samples_seen = samples_seen
        self._pending_random_state = random_state

    @property
    def batches_done(self) -> int:
        """Batches done in the epoch under way (in ``after_train_iter``: with this one)."""
        return self._batches_done

    def epoch_end_random_state(self, epochs_done: int) -> Optional[dict]:
        """This process's RNG states as epoch ``epochs_done`` ended (after its last batch,
        before ``after_train_epoch``): the states the next epoch starts from, or None if that
        epoch did not end in this process."""
        if self._epoch_end is not None and self._epoch_end[0] == epochs_done:
            return self._epoch_end[1]
        return None

    def run_epoch(self) -> None:
        """One epoch, or the rest of one after :meth:`resume_at`, in this order:

        1. At an epoch's start, the RNG states are restored: the checkpoint's (resumed from an
           epoch checkpoint, or one taken after an epoch's last batch), else those the previous
           epoch of this process ended with, undoing whatever validation and hooks drew in
           between. Nothing has drawn for this epoch yet.
        2. ``before_train_epoch`` hooks (the sampler gets its epoch), ``model.train()``.
        3. Resumed mid-epoch: the sampler skips the batches done.
        4. The data iterator is created with torch's RNG forked, so its workers' base seed
           moves no state, whether the workers are new or persistent.
        5. Resumed mid-epoch: the checkpoint's RNG states are restored, as they were after the
           last batch done (its iterator and epoch hooks had run before the save).
        6. The batches; then the RNG states are kept for step 1 of the next epoch and
           ``after_train_epoch`` hooks run (they save epoch checkpoints).
        """
        done, self._resume_batches = self._resume_batches, 0
        resumed, self._pending_random_state = self._pending_random_state, None
        start = resumed if resumed is not None else \
            self.epoch_end_random_state(self.epoch)
        if not done and start is not None:
            restore_random_state(start)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        if done:
            sampler = self.dataloader.sampler
            sampler.skip(min(done * self.dataloader.batch_size, len(sampler)))
            self.runner.logger.info(
                f'Resuming epoch {self.epoch + 1} at batch {done + 1}/{len(self.dataloader)}: '
                f'{done} batches skipped without loading them')
        self._batches_done = done
        with torch.random.fork_rng(devices=[]):  # the iterator draws from torch's CPU RNG only
            batches = iter(self.dataloader)
        if done and resumed is not None:
            restore_random_state(resumed)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self._epoch_end = (self.epoch + 1, capture_random_state())
        self.runner.call_hook('after_train_epoch')
        set_loop_position(self, self.epoch + 1, self.iter)
        self._batches_done = 0

    def run_iter(self, idx: int, data_batch) -> None:
        # mmengine's run_iter, with the position advanced before after_train_iter, so that a
        # checkpoint saved by those hooks records this batch as done
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        try:
            outputs = self.runner.model.train_step(data_batch,
                                                   optim_wrapper=self.runner.optim_wrapper)
        except ValueError as exc:
            if ONE_VALUE_PER_CHANNEL not in str(exc):
                raise
            raise self._single_sample_error(idx, data_batch) from exc
        self._batches_done = idx + 1
        self.iters_this_process += 1
        self.samples_seen += self.dataloader.batch_size * self.runner.world_size
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
        set_loop_position(self, self.epoch, self.iter + 1)

    def _single_sample_error(self, idx: int, data_batch) -> ExplainedValueError:
        """torch's BatchNorm refuses a batch of one sample in training mode (split attention
        normalises pooled 1x1 maps, so every ResNeSt does): say where, why and the fix."""
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else data_batch
        size = len(inputs) if hasattr(inputs, '__len__') else '?'
        loader = self.dataloader
        world = self.runner.world_size
        devices = f' per device on {world} devices' if world > 1 else ''
        return ExplainedValueError(
            f'Iteration {self.iter + 1} (epoch {self.epoch + 1}, batch {idx + 1}/'
            f'{len(loader)}): a batch of {size} sample reached a BatchNorm layer in training '
            f'mode, which cannot normalise a single value per channel ({len(loader.dataset)} '
            f'samples in batches of {loader.batch_size}{devices} leave a last batch of '
            f'{size}). Set train_dataloader.drop_last=True (the resnest_mm configs do), or a '
            'batch size that leaves more than one sample in the last batch.')
