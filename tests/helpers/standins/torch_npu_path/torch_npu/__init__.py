"""STAND-IN for torch_npu (contract tests only; see tests/helpers/standins/README.md).

``npu.get_soc_version()`` (an int; 104 is a 910A-family SoC, below 220),
``npu.is_available()`` and ``optim.NpuFusedSGD`` with torch's SGD signature, ``is_fused_optimizer``
and a ``zero_grad`` that refuses ``set_to_none=True`` (``ValueError``), as torch_npu's does.
"""
import types

import torch

SOC_VERSION = {'value': 104}


def _get_soc_version():
    return SOC_VERSION['value']


npu = types.SimpleNamespace(get_soc_version=_get_soc_version, is_available=lambda: True)


class NpuFusedSGD(torch.optim.SGD):
    is_fused_optimizer = True

    def __init__(self, params, lr=None, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, foreach=False)

    def zero_grad(self, set_to_none=False):
        if set_to_none:
            raise ValueError('set_to_none is not supported by NpuFusedSGD')
        super().zero_grad(set_to_none=False)


optim = types.SimpleNamespace(NpuFusedSGD=NpuFusedSGD)
