"""STAND-IN for Ascend apex's ``apex.optimizers.NpuFusedSGD`` (contract tests only).

As Ascend apex's (``src/apex/optimizers/npu_fused_sgd.py``): an ``Optimizer`` with SGD's
signature and checks and ``is_npu_fused_optimizer = True``; ``step()`` raises unless
``amp.initialize`` gave it its ``_amp_stash``; it updates, per group, the slices of the buffers
amp combined after the first backward (params and gradients) and a combined momentum buffer per
group, so a param that had no gradient then is never updated.
"""
import torch

from apex import amp
from tests.helpers.standins.combined import CombinedSGD


class NpuFusedSGD(CombinedSGD):
    def __init__(self, params, *args, **kwargs):
        self.is_npu_fused_optimizer = True
        super().__init__(params, *args, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        if not hasattr(self, '_amp_stash'):
            raise RuntimeError('apex.optimizers.NpuFusedSGD should be used with AMP.')
        amp.combined_init(self)  # a step before any backward combines what exists
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._amp_stash.combined:
            self._fused_step(self._amp_stash.combined)
        return loss
