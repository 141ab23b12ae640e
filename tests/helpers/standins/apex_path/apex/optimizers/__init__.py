"""STAND-IN for Ascend apex's ``apex.optimizers.NpuFusedSGD`` (contract tests only).

Same signature and checks as ``torch.optim.SGD``; ``step`` refuses to run unless
``amp.initialize`` has given the optimizer its ``_amp_stash``, as the real class does.
"""
import torch
from torch.optim.optimizer import required


class NpuFusedSGD(torch.optim.SGD):
    is_npu_fused_optimizer = True

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, foreach=False)

    def step(self, closure=None):
        if not hasattr(self, '_amp_stash'):
            raise RuntimeError('apex.optimizers.NpuFusedSGD should be used with AMP.')
        return super().step(closure)
