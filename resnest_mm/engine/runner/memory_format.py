"""The memory format of a run's model and inputs: the one place ``channels_last`` is decided.

What mmengine lacks: its Runner has no memory-format setting, and ``model.to(memory_format=...)``
converts the weights only; the batches the data preprocessor makes stay NCHW. The top-level
config key ``channels_last`` (``tools/train.py --channels-last`` sets it) is read by the runner,
decided here once (:func:`memory_format`, which asks :mod:`resnest_mm.device` whether the device
runs NHWC tensors), and applied once to the model and to its inputs (:func:`to_memory_format`).
Nothing below the runner consults it: a layer picks its kernels from the layout of the tensor
it is given.
"""
from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ... import device
from ...utils.errors import ExplainedValueError


def memory_format(channels_last: bool) -> torch.memory_format:
    """The memory format of a run whose config sets ``channels_last``.

    Args:
        channels_last (bool): The config's ``channels_last`` key.

    Returns:
        torch.memory_format: ``torch.channels_last`` (NHWC) when asked for, else
        ``torch.contiguous_format``.

    Raises:
        ExplainedValueError: ``channels_last`` on a device that does not run NHWC tensors.
    """
    if not channels_last:
        return torch.contiguous_format
    if not device.supports_channels_last():
        raise ExplainedValueError(
            f'channels_last=True (--channels-last): {device.device_type().upper()} does not run '
            'channels_last tensors; set channels_last = False in the config (or drop '
            '--channels-last) on this device.')
    return torch.channels_last


def to_memory_format(model: nn.Module, fmt: torch.memory_format) -> nn.Module:
    """Keep ``model``'s 4-D weights and the batches of its data preprocessor in ``fmt``.

    Weights are converted here; in-place initialisation and checkpoint loading keep their
    layout later. The inputs are converted by a forward hook on ``model.data_preprocessor``
    (a torch extension point): a convolution given NHWC weights and an NCHW batch would
    convert the batch itself, so doing it once where the batch is made keeps every layer in
    one layout. ``torch.contiguous_format`` changes nothing.

    Args:
        model (nn.Module): The model (an mmengine ``BaseModel`` has a ``data_preprocessor``).
        fmt (torch.memory_format): From :func:`memory_format`.

    Returns:
        nn.Module: ``model``, converted in place.
    """
    if fmt == torch.contiguous_format:
        return model
    model.to(memory_format=fmt)
    preprocessor = getattr(model, 'data_preprocessor', None)
    if isinstance(preprocessor, nn.Module):
        preprocessor.register_forward_hook(functools.partial(_batch_to, fmt))
    return model


def _batch_to(fmt: torch.memory_format, module: nn.Module, args: Any, output: Any) -> Any:
    """The data preprocessor's ``{'inputs': ..., 'data_samples': ...}`` with a 4-D ``inputs``
    batch in ``fmt`` (a list of differently sized images is left as it is)."""
    inputs = output.get('inputs') if isinstance(output, dict) else None
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        output = dict(output, inputs=inputs.contiguous(memory_format=fmt))
    return output
