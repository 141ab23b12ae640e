"""STAND-IN for ``torch_npu.optim`` (contract tests only): ``NpuFusedSGD``.

As torch_npu's (``torch_npu/optim/npu_fused_sgd.py``, ``npu_fused_optim_base.py``): an
``Optimizer`` (not ``torch.optim.SGD``) with SGD's signature and checks and
``is_fused_optimizer = True``; at the first ``step()`` (or ``zero_grad()`` with gradients
present) the params with a gradient, their gradients and their momentum buffers are combined
into flat buffers (``TypeError`` for a dtype other than fp32/fp16, ``RuntimeError`` for a
non-contiguous tensor); params without a gradient then are never updated; every later step
updates the buffers, so a gradient re-made outside them (``set_to_none``) is not seen;
``zero_grad(set_to_none=True)`` raises ``ValueError``; the closure runs under ``no_grad``.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from tests.helpers.standins.combined import Combined, CombinedSGD, combine_by_dtype


class NpuFusedOptimizerBase(CombinedSGD):
    """torch_npu's base of the fused optimizers (here: the SGD one only)."""


class NpuFusedSGD(NpuFusedOptimizerBase):
    def __init__(self, params, *args, **kwargs):
        super().__init__(params, *args, **kwargs)
        self.is_fused_optimizer = True
        self._combined: Optional[Dict[torch.dtype, Combined]] = None

    def _maybe_combine(self) -> None:
        if self._combined:
            return
        combined = combine_by_dtype([p for g in self.param_groups for p in g['params']],
                                    with_params=True)
        self._combined = combined or None

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None  # under no_grad, as torch_npu's
        self._maybe_combine()
        if self._combined:
            self._fused_step(self._combined)
        return loss

    @torch.no_grad()
    def zero_grad(self, set_to_none: bool = False) -> None:
        if set_to_none:
            raise ValueError('set_to_none is not supported in fused optimizers')
        self._maybe_combine()
        if not self._combined:
            super().zero_grad(set_to_none=False)
            return
        for entry in self._combined.values():
            entry.grads.zero_()
