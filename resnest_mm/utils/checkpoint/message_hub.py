"""The message hub in our checkpoints: ``HistoryBuffer`` objects stored as plain data.

mmengine's ``HistoryBuffer`` pickles its class's statistics methods (``builtins.getattr``
calls), which torch's weights-only loading refuses, so mmpretrain's tools and a plain
``torch.load(weights_only=True)`` could not read a checkpoint holding one. Ours store each
buffer as a dict of two tensors (:func:`plain_message_hub`) and turn it back into a buffer on
load (:func:`restore_message_hub`, validated as data). Checkpoints written by mmengine itself
are read by the restricted reader (:mod:`.data_types`), which rebuilds their buffers the same
way.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .errors import RefusedError
from .limits import CheckpointLimits

PLAIN_BUFFER_KEY = '__history_buffer__'


def _plain_history(values: Any) -> Any:
    array = np.ascontiguousarray(values)
    if array.ndim == 1 and array.dtype.kind in 'biuf':
        return torch.from_numpy(array.copy())
    return array.tolist()


def plain_message_hub(state: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of ``MessageHub.state_dict()`` whose HistoryBuffers are dicts of tensors and
    whose numpy scalars (the logger's ``eta``) are Python numbers: plain data that
    ``torch.load(weights_only=True)`` reads without any allow-list."""
    runtime_info = {k: v.item() if isinstance(v, np.generic) else v
                    for k, v in state.get('runtime_info', {}).items()}
    scalars = {}
    for key, buffer in state.get('log_scalars', {}).items():
        if isinstance(buffer, HistoryBuffer):
            log, count = buffer.data
            buffer = {PLAIN_BUFFER_KEY: 1, 'max_length': int(buffer.max_length),
                      'log_history': _plain_history(log),
                      'count_history': _plain_history(count)}
        scalars[key] = buffer
    return dict(state, log_scalars=scalars, runtime_info=runtime_info)


def _history(values: Any, key: str) -> np.ndarray:
    if isinstance(values, torch.Tensor) and values.dim() == 1 and \
            not values.is_complex() and values.dtype != torch.bool:
        return values.detach().cpu().numpy()
    if isinstance(values, list) and all(type(v) in (int, float, bool) for v in values):
        return np.asarray(values)
    raise RefusedError(f'its message hub entry {key} holds a history that is not a list of numbers')


def restore_message_hub(state: Dict[str, Any], limits: CheckpointLimits = CheckpointLimits()
                        ) -> None:
    """Undo :func:`plain_message_hub` in place (buffers become HistoryBuffers again), checking
    each buffer as data (numbers, equal lengths, at most ``max_length``).

    Raises:
        RefusedError: a buffer that is not such data.
    """
    scalars = state.get('log_scalars')
    if not isinstance(scalars, dict):
        return
    for key, value in list(scalars.items()):
        if not (isinstance(value, dict) and value.get(PLAIN_BUFFER_KEY) == 1):
            continue
        max_length = value.get('max_length')
        log = _history(value.get('log_history'), key)
        count = _history(value.get('count_history'), key)
        if type(max_length) is not int or not 0 < max_length <= limits.history_length or \
                len(log) != len(count) or len(log) > max_length:
            raise RefusedError(f'its message hub entry {key} has histories of other lengths than '
                          'its max_length allows')
        scalars[key] = HistoryBuffer(log, count, max_length)
