"""``NpuFusedSGD``: the fused SGD of the device, under the name the seed used."""
from __future__ import annotations

import importlib
from typing import Any, Iterable

import torch
from mmengine.logging import print_log

from ... import device
from ...registry import OPTIMIZERS
from .fused_sgd import FusedSGD

_logged: set = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        print_log(message, logger='current')


def fused_sgd_class(implementation: str) -> type:
    """The optimizer class of :func:`resnest_mm.device.sgd_implementation`'s answer."""
    if implementation == 'apex':
        return importlib.import_module('apex.optimizers').NpuFusedSGD
    if implementation == 'torch_npu':
        return device.torch_npu().optim.NpuFusedSGD
    if implementation == 'torch_fused':
        return FusedSGD
    return torch.optim.SGD


@OPTIMIZERS.register_module(name='NpuFusedSGD')
def build_npu_fused_sgd(params: Iterable[Any],
                        lr: float,
                        momentum: float = 0.,
                        dampening: float = 0.,
                        weight_decay: float = 0.,
                        nesterov: bool = False,
                        apex_amp: bool = False) -> torch.optim.Optimizer:
    """SGD with momentum, fused the way this device does it fastest; same semantics everywhere.

    * NPU: ``torch_npu.optim.NpuFusedSGD``; ``apex.optimizers.NpuFusedSGD`` when apex AMP drives
      training (``ApexAmpHook`` rebuilds the optimizer as apex's, which refuses to step without
      ``amp.initialize``);
    * CUDA on torch>=2.3, and CPU on torch>=2.4: :class:`FusedSGD`
      (``torch.optim.SGD(fused=True)`` with plain SGD's momentum when a first step is skipped or
      a parameter starts late);
    * otherwise ``torch.optim.SGD(foreach=True)``.

    All take ``lr, momentum, dampening, weight_decay, nesterov`` with torch's SGD semantics (the
    NPU classes mirror ``torch.optim.SGD``'s signature and checks). Which one runs is logged once.
    mmengine registers torch_npu's class under the same name in its root registry on NPU
    machines; configs in scope ``resnest_mm`` get this one.

    Args:
        params: Parameters or parameter groups (from mmengine's optimizer constructor).
        lr (float): Learning rate.
        momentum (float): Momentum factor. Defaults to 0.
        dampening (float): Dampening for momentum. Defaults to 0.
        weight_decay (float): L2 penalty. Defaults to 0.
        nesterov (bool): Nesterov momentum. Defaults to False.
        apex_amp (bool): Build apex's class (NPU + apex only). Defaults to False.
    """
    implementation = device.sgd_implementation(apex_amp=apex_amp)
    cls = fused_sgd_class(implementation)
    kwargs = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                  nesterov=nesterov)
    if implementation == 'torch_foreach':
        kwargs['foreach'] = True
    _log_once(f'NpuFusedSGD on {device.device_type()}: {cls.__module__}.{cls.__name__}'
              + ('(foreach=True)' if 'foreach' in kwargs else ''))
    return cls(params, **kwargs)
