"""``ApexAmpOptimWrapper``: the per-iteration half of apex AMP (``ApexAmpHook`` does the setup)."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from mmengine.optim import OptimWrapper

from ...registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class ApexAmpOptimWrapper(OptimWrapper):
    """Backward through ``amp.scale_loss`` and apex AMP state in checkpoints.

    mmengine's ``ApexOptimWrapper`` calls ``amp.initialize`` lazily at the first iteration on
    ``model.module`` - after the DDP wrap, which Ascend's apex documentation forbids - and
    passes none of Ascend apex's arguments (``combine_grad``). Here initialisation belongs to
    :class:`~resnest_mm.engine.hooks.ApexAmpHook` (before the DDP wrap, as the seed did) and this
    wrapper does only what happens every iteration. It is not built from a config: the hook
    creates it around the optimizer the config built.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer, already passed to ``amp.initialize``.
        amp (module): ``apex.amp``.
        **kwargs: ``OptimWrapper`` arguments (``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, amp: ModuleType, **kwargs: Any) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self.amp = amp

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Scale the loss (dynamic or static, as ``amp.initialize`` was told), backpropagate;
        apex unscales the gradients (in one buffer with ``combine_grad``) on leaving."""
        with self.amp.scale_loss(loss, self.optimizer) as scaled_loss:
            scaled_loss.backward(**kwargs)
        self._inner_count += 1

    def zero_grad(self, **kwargs: Any) -> None:
        """Zero gradients without ``set_to_none``: apex replaces ``optimizer.zero_grad`` with a
        function of no arguments when gradients are combined, and fused optimizers break when
        their gradient buffers are set to None (torch 2.x's default)."""
        self.optimizer.zero_grad()

    def state_dict(self) -> dict:
        """The optimizer's state plus apex's loss-scaler state under ``apex_amp``."""
        state_dict = super().state_dict()
        state_dict['apex_amp'] = self.amp.state_dict()
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the loss-scaler state (``amp.initialize`` has run) and the optimizer's."""
        state_dict = dict(state_dict)
        amp_state = state_dict.pop('apex_amp', None)
        if amp_state is not None:
            self.amp.load_state_dict(amp_state)
        super().load_state_dict(state_dict)
