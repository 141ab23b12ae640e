"""``ResumableEpochBasedTrainLoop``: mmengine's epoch loop that resumes mid-epoch exactly."""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from mmengine.runner import EpochBasedTrainLoop

from ... import device
from ...registry import LOOPS
from ...utils.errors import ExplainedValueError


def capture_random_state() -> dict:
    """The global RNG states of this process (Python, numpy, torch, its accelerator device).

    Only ints, floats, strings, tuples, dicts and tensors: a checkpoint holding them still loads
    with ``torch.load(weights_only=True)`` (``tools/test.py`` reads checkpoints that way).
    """
    numpy_state = np.random.get_state(legacy=False)
    numpy_state['state'] = dict(numpy_state['state'],
                                key=[int(k) for k in numpy_state['state']['key']])
    state = dict(python=random.getstate(), numpy=numpy_state, torch=torch.get_rng_state())
    accelerator = device.rng_state()
    if accelerator is not None:
        state['accelerator'] = accelerator
    return state


def restore_random_state(state: dict) -> None:
    """Undo :func:`capture_random_state`.

    Resuming loads checkpoints onto the device (``map_location`` is the GPU/NPU there), while
    the RNG setters take CPU byte tensors only: states are moved back first.
    """
    random.setstate(state['python'])
    numpy_state = dict(state['numpy'])
    numpy_state['state'] = dict(numpy_state['state'],
                                key=np.asarray(numpy_state['state']['key'], dtype=np.uint32))
    np.random.set_state(numpy_state)
    torch.set_rng_state(state['torch'].cpu())
    if torch.is_tensor(state.get('accelerator')):
        device.set_rng_state(state['accelerator'])


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that continues an epoch at the iteration its checkpoint was taken.

    What mmengine's loop lacks: resumed from an iteration checkpoint, it replays the whole epoch
    from its first batch (so samples are seen twice and the epoch has too many iterations). Here,
    when ``iter`` lies inside ``epoch``, the sampler (``ResumableSampler``) is told to skip the
    batches already done, without loading them, and the RNG states saved by
    ``AtomicCheckpointHook`` are restored after the data iterator exists (creating it draws
    from torch's RNG), so the rest of the epoch runs as it would have without the interruption.
    Arguments are mmengine's.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_random_state: Optional[dict] = None
        self._resume_done: Optional[int] = None

    def resume_random_state(self, state: dict) -> None:
        """Restore ``state`` when the next epoch's data iterator has been created."""
        self._pending_random_state = state

    def resume_position(self, done: int) -> None:
        """The checkpoint's own record of the iterations done in its epoch (0: epoch end)."""
        self._resume_done = done

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        if self._resume_done is not None:  # recorded by AtomicCheckpointHook at the save
            done, self._resume_done = self._resume_done, None
        else:  # other checkpoints: inferred, right when the epoch length has not changed
            done = max(0, self._iter - self._epoch * len(self.dataloader))
        if done > 0:
            sampler = self.dataloader.sampler
            if not hasattr(sampler, 'skip'):
                raise ExplainedValueError(
                    f'Resuming inside epoch {self._epoch + 1} (iteration {done} of '
                    f'{len(self.dataloader)}) needs a sampler that can skip, such as '
                    f"train_dataloader.sampler=dict(type='ResumableSampler'); "
                    f'{type(sampler).__name__} would replay the epoch from its start')
            sampler.skip(min(done * self.dataloader.batch_size, len(sampler)))
            self.runner.logger.info(
                f'Resuming epoch {self._epoch + 1} at iteration {done + 1}/'
                f'{len(self.dataloader)}: {done} batches skipped without loading them')
        batches = iter(self.dataloader)
        if self._pending_random_state is not None:
            restore_random_state(self._pending_random_state)
            self._pending_random_state = None
        for idx, data_batch in enumerate(batches, start=max(done, 0)):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
