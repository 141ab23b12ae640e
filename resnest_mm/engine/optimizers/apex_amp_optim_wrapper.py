"""``ApexAmpOptimWrapper``: apex AMP in the order Ascend's apex requires, as a wrapper."""
from __future__ import annotations

import importlib
import inspect
import logging
from types import ModuleType
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from ... import device
from ...registry import OPTIM_WRAPPERS
from ...utils.errors import ExplainedRuntimeError


@OPTIM_WRAPPERS.register_module()
class ApexAmpOptimWrapper(OptimWrapper):
    """Backward through ``amp.scale_loss``, apex AMP state in checkpoints, and the
    ``amp.initialize`` call itself (:meth:`initialize_amp`).

    mmengine's ``ApexOptimWrapper`` calls ``amp.initialize`` lazily at the first iteration on
    ``model.module`` - after the DDP wrap, which Ascend's apex documentation forbids - and
    passes none of Ascend apex's arguments (``combine_grad``). Here ``ResNeStRunner`` builds this
    wrapper when :mod:`resnest_mm.engine.amp_policy` decides on apex (``ApexAmpHook`` in the
    config, apex installed), calls :meth:`initialize_amp` on the bare model at once, and builds
    the model's DDP wrapper after it, once.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer the config built.
        opt_level (str): apex optimisation level. Defaults to ``'O1'``.
        loss_scale (str | float): ``'dynamic'`` or a static scale. Defaults to ``'dynamic'``.
        combine_grad (bool): Ascend apex: unscale all gradients in one fused buffer (passed
            only when the installed apex accepts it). Defaults to True.
        float_functions (Sequence[tuple]): ``(module, function)`` pairs kept in fp32.
            Defaults to ``[('torch', 'sigmoid'), ('torch', 'softmax')]``.
        amp (module, optional): ``apex.amp``. Defaults to None (imported).
        **kwargs: ``OptimWrapper`` arguments (``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, opt_level: str = 'O1',
                 loss_scale: Union[str, float] = 'dynamic', combine_grad: bool = True,
                 float_functions: Sequence[Tuple[str, str]] = (('torch', 'sigmoid'),
                                                               ('torch', 'softmax')),
                 amp: Optional[ModuleType] = None, **kwargs: Any) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self.amp = amp if amp is not None else importlib.import_module('apex.amp')
        self.opt_level = opt_level
        self.loss_scale = loss_scale
        self.combine_grad = combine_grad
        self.float_functions = [tuple(pair) for pair in float_functions]
        self.amp_initialized = False

    def initialize_amp(self, model: torch.nn.Module) -> torch.nn.Module:
        """Register the float functions (apex reads them inside ``initialize``), then
        ``amp.initialize(model, optimizer, opt_level, loss_scale[, combine_grad])``.

        Args:
            model (torch.nn.Module): The bare model (not yet in DDP).

        Returns:
            torch.nn.Module: The model apex returns, to be wrapped in DDP afterwards.
        """
        if self.amp_initialized:
            raise ExplainedRuntimeError('apex AMP is already initialised for this optimizer '
                                        'wrapper: build a new runner for a new run')
        for module_name, function in self.float_functions:
            self.amp.register_float_function(importlib.import_module(module_name), function)
        kwargs: dict = dict(opt_level=self.opt_level, loss_scale=self.loss_scale)
        if self.combine_grad:
            if 'combine_grad' in inspect.signature(self.amp.initialize).parameters:
                kwargs['combine_grad'] = True
            else:
                print_log('The installed apex has no combine_grad (it is not Ascend apex): '
                          'running apex AMP without it.', logger='current',
                          level=logging.WARNING)
        model, self.optimizer = self.amp.initialize(model, self.optimizer, **kwargs)
        self.amp_initialized = True
        optimizer = type(self.optimizer)
        print_log(f'apex AMP on {device.device_type()}: opt_level={self.opt_level}, '
                  f'loss_scale={self.loss_scale}, combine_grad={"combine_grad" in kwargs}, '
                  f'optimizer {optimizer.__module__}.{optimizer.__name__}', logger='current')
        return model

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
