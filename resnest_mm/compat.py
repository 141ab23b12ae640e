"""What differs between the torch, numpy and mmengine versions resnest_mm supports.

resnest_mm runs on torch 2.1 through 2.15 (every torch_npu line, and the newest torch), numpy
1.x and 2.x, and mmengine 0.10.x (:mod:`resnest_mm.version` refuses others on import). Every
version test of the package lives here; the rest of resnest_mm asks this module instead of
reading ``torch.__version__``. A feature an older torch cannot give is refused in one sentence
when it is used (:func:`require_torch`), never at import.

The differences, oldest torch first:

* ``torch.amp.GradScaler`` arrived in torch 2.3 (before it: ``torch.cuda.amp.GradScaler``, CUDA
  only): :func:`grad_scaler`, :func:`is_grad_scaler`.
* ``torch.optim.SGD(fused=True)`` runs on CPU since torch 2.4 (CUDA before):
  :func:`fused_sgd`.
* ``torch.load`` reads weights-only by default since 2.6, and its allow-list API
  (``add_safe_globals``, ``safe_globals``) arrived in 2.4 and 2.5. resnest_mm needs neither: its
  checkpoint reader (:mod:`resnest_mm.utils.checkpoint`) is a restricted pickle module that
  ``torch.load`` takes on every supported torch, with ``weights_only=False`` passed explicitly.
* ``nn.Module.register_load_state_dict_pre_hook`` is public since torch 2.5; before it the same
  hook list is filled by ``_register_load_state_dict_pre_hook(hook, with_module=True)``:
  :func:`register_load_state_dict_pre_hook`.
* ONNX export through ``torch.export`` (``torch.onnx.export(dynamo=True)``) needs torch 2.6:
  :func:`require_torch`.
* numpy 2 moved ``numpy.core`` to ``numpy._core`` (torch 2.1 and 2.2 were built against numpy
  1.x): the checkpoint reader accepts both names for numpy's array and scalar rebuilders.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import torch

from .utils.errors import ExplainedRuntimeError
from .version import SUPPORTED, _dotted, _parse, requirement

Version = Tuple[int, ...]

#: The running torch as a tuple, e.g. ``(2, 1, 2)`` for ``'2.1.2+cu121'``.
TORCH_VERSION: Version = _parse(torch.__version__)


def torch_at_least(minimum: Version) -> bool:
    """Whether the running torch is ``minimum`` or newer (``(2, 4)``: 2.4.0 and later)."""
    return TORCH_VERSION >= tuple(minimum)


def require_torch(minimum: Version, feature: str) -> None:
    """Refuse a feature the running torch is too old for, in one sentence.

    Args:
        minimum: The first torch version that has it, e.g. ``(2, 6)``.
        feature: What the user asked for, as they would name it (``'ONNX export'``).

    Raises:
        ExplainedRuntimeError: naming the feature, the torch needed and the torch installed.
    """
    if torch_at_least(minimum):
        return
    high = SUPPORTED[('torch', )][1]
    raise ExplainedRuntimeError(
        f'{feature} needs torch >= {_dotted(tuple(minimum))}, but torch {torch.__version__} is '
        'installed: leave it out, or install a newer torch with its torchvision '
        f"(pip install '{requirement('torch', tuple(minimum), high)}' torchvision).")


def register_load_state_dict_pre_hook(module: torch.nn.Module, hook: Callable[..., None]) -> Any:
    """Run ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
    unexpected_keys, error_msgs)`` before ``module`` loads a state dict.

    torch >= 2.5 has the public method; older torch has only the private one it wraps, called
    with ``with_module=True`` so the hook gets the same arguments.

    Returns:
        torch's handle (``.remove()`` takes the hook off).
    """
    public = getattr(module, 'register_load_state_dict_pre_hook', None)
    if public is not None:
        return public(hook)
    return module._register_load_state_dict_pre_hook(hook, with_module=True)


# --- mixed precision ---------------------------------------------------------------------------

def grad_scaler(device_type: str, enabled: bool = True, **kwargs: Any) -> Any:
    """A gradient scaler for ``device_type``: ``torch.amp.GradScaler(device_type)`` (torch >= 2.3),
    ``torch.cuda.amp.GradScaler`` before it.

    Args:
        device_type: ``'cuda'``, ``'cpu'``, ``'npu'`` ...
        enabled: As ``GradScaler``'s. A disabled scaler (the CPU's bf16 AMP, which needs no
            scaling) exists on every torch. Defaults to True.
        **kwargs: Passed on (``init_scale``, ``growth_interval`` ...).

    Raises:
        ExplainedRuntimeError: an enabled scaler on a device other than CUDA before torch 2.3.
    """
    if torch_at_least((2, 3)):
        return torch.amp.GradScaler(device_type, enabled=enabled, **kwargs)
    if enabled and device_type != 'cuda':
        require_torch((2, 3), f'loss scaling on {device_type}')
    return torch.cuda.amp.GradScaler(enabled=enabled, **kwargs)


_GRAD_SCALER_TYPES = tuple(t for t in (getattr(torch.amp, 'GradScaler', None),
                                        torch.cuda.amp.GradScaler) if t is not None)


def is_grad_scaler(obj: Any) -> bool:
    """Whether ``obj`` is torch's gradient scaler (``torch.amp``'s or the older
    ``torch.cuda.amp``'s, which subclasses it since torch 2.3)."""
    return isinstance(obj, _GRAD_SCALER_TYPES)


# --- optimizers --------------------------------------------------------------------------------

# The first torch whose ``torch.optim.SGD(fused=True)`` runs on a device's tensors (torch 2.1 and
# 2.2 have no ``fused`` argument at all).
_FUSED_SGD_SINCE = {'cuda': (2, 3), 'cpu': (2, 4)}


def fused_sgd(device_type: str) -> bool:
    """Whether ``torch.optim.SGD(fused=True)`` runs on ``device_type`` tensors here: CUDA since
    torch 2.3, CPU since 2.4, no other device."""
    since = _FUSED_SGD_SINCE.get(device_type)
    return since is not None and torch_at_least(since)


def require_fused_sgd(device_type: str) -> None:
    """Refuse ``torch.optim.SGD(fused=True)`` where this torch has no kernel for ``device_type``.

    Raises:
        ExplainedRuntimeError: naming the device and the torch needed (or that none has it).
    """
    since = _FUSED_SGD_SINCE.get(device_type)
    if since is None:
        raise ExplainedRuntimeError(
            f"torch's fused SGD has no {device_type} kernel: use type='NpuFusedSGD', which picks "
            'the fused SGD of the device, or plain SGD.')
    require_torch(since, f'fused SGD on {device_type}')
