"""The random state of a process: captured at a save, restored at a resume.

What neither mmengine nor torch keeps: mmengine's checkpoint records the seed, not the state the
generators reached, so a resumed run draws other numbers than the uninterrupted one would have
(mmpretrain's ``Mixup`` mixes other pairs). Here the global generators (Python, numpy, torch, the
accelerator's) and the batch augments with generators of their own (``NpuMixup``) are captured
as plain data and put back.
"""
from __future__ import annotations

import random
from typing import List, Protocol, runtime_checkable

import numpy as np
import torch

from ... import device
from .bare_model import bare_model


@runtime_checkable
class StatefulAugment(Protocol):
    """A batch augment with generators of its own, saved and restored with the run."""

    def state_dict(self) -> dict:
        ...

    def load_state_dict(self, state: dict) -> None:
        ...


def capture_random_state() -> dict:
    """The global RNG states of this process (Python, numpy, torch, its accelerator device).

    Only ints, floats, strings, tuples, dicts and tensors: a checkpoint holding them still loads
    with ``torch.load(weights_only=True)``.
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


def random_state_problem(state: dict) -> str:
    """Why ``state`` is not a :func:`capture_random_state` result ('' when it is), checked by
    the libraries themselves on generators of their own (the global ones are left alone)."""
    try:
        random.Random().setstate(state['python'])
        numpy_state = dict(state['numpy'])
        numpy_state['state'] = dict(numpy_state['state'], key=np.asarray(
            numpy_state['state']['key'], dtype=np.uint32))
        np.random.RandomState().set_state(numpy_state)
        torch.Generator().set_state(state['torch'].cpu())
    except Exception as exc:  # TypeError, ValueError, KeyError, RuntimeError
        return f'{type(exc).__name__}: {exc}'
    return ''


def stateful_augments(model) -> List[StatefulAugment]:
    """Batch augments with their own generators in the data preprocessor of ``model`` (wrapped
    or not)."""
    model = bare_model(model)
    batch_augments = getattr(getattr(model, 'data_preprocessor', None), 'batch_augments', None)
    augments = getattr(batch_augments, 'augments', None) or []
    return [a for a in augments if isinstance(a, StatefulAugment)]
