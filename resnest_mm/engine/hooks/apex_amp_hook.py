"""``ApexAmpHook``: the seed's apex AMP (O1, ``combine_grad=True``) as a config switch."""
from __future__ import annotations

import importlib
import inspect
import logging
import weakref
from typing import Any, Sequence, Tuple, Union

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ... import device
from ...registry import HOOKS
from ...utils.errors import ExplainedRuntimeError, ExplainedValueError
from ..optimizers import ApexAmpOptimWrapper, CpuAmpOptimWrapper, fused_sgd_class

OPT_LEVELS = ('O0', 'O1', 'O2', 'O3')


def _counted_step(wrapper: OptimWrapper) -> Any:
    """``wrapper.step`` counting calls in ``wrapper._global_step``, as mmengine's parameter
    schedulers expect of the optimizer they were built on (they warn otherwise)."""
    ref = weakref.ref(wrapper)
    step_func = type(wrapper).step

    def step(*args: Any, **kwargs: Any) -> Any:
        instance = ref()
        instance._global_step += 1
        return step_func(instance, *args, **kwargs)

    step._with_counter = True
    return step


def rewrap_optimizer(runner, new_wrapper: OptimWrapper) -> OptimWrapper:
    """Put ``new_wrapper`` in place of ``runner.optim_wrapper``, keeping what the old one knew.

    Gradient accumulation and clipping settings carry over, and LR schedulers built on the old
    wrapper are pointed at the new one, with the step counter they put on the wrapper.
    """
    old = runner.optim_wrapper
    carried = {k: v for k, v in vars(old).items() if k != 'step' and (
        k not in vars(new_wrapper)
        or k in ('_accumulative_counts', 'clip_grad_kwargs', 'base_param_settings'))}
    vars(new_wrapper).update(carried)
    if getattr(old.step, '_with_counter', False):
        new_wrapper.step = _counted_step(new_wrapper)
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    for scheduler in schedulers:
        if scheduler.optimizer is old:
            scheduler.optimizer = new_wrapper
    runner.optim_wrapper = new_wrapper
    return new_wrapper


@HOOKS.register_module()
class ApexAmpHook(Hook):
    """Mixed precision through apex AMP, as the seed trained on Ascend; native AMP elsewhere.

    With apex installed (Ascend's, or NVIDIA's) it, in ``before_run`` - after the optimizer is
    built, before weights are initialised or a checkpoint is resumed:

    1. rebuilds a torch_npu ``NpuFusedSGD`` as ``apex.optimizers.NpuFusedSGD`` (same groups and
       hyper-parameters) when that exists;
    2. registers ``float_functions`` with ``amp.register_float_function`` (they must be known
       before ``initialize``);
    3. calls ``amp.initialize(bare_model, optimizer, opt_level, loss_scale[, combine_grad])`` on
       the model *outside* its DDP wrapper, then wraps it in DDP again, so DDP is created after
       apex as Ascend's apex documentation requires (mmengine's ``ApexOptimWrapper`` does it the
       other way round); ``combine_grad`` is passed only when the installed apex accepts it;
    4. hands the optimizer to :class:`ApexAmpOptimWrapper` (backward through ``amp.scale_loss``,
       apex state saved in and restored from checkpoints).

    Without apex it falls back to the device's native AMP (``AmpOptimWrapper``: fp16 with
    dynamic loss scaling on GPU/NPU, bf16 on CPU) with a one-line warning, or raises with
    ``fallback=False``.

    Args:
        opt_level (str): apex optimisation level. Defaults to ``'O1'`` (the seed's README).
        loss_scale (str | float): ``'dynamic'`` or a static scale. Defaults to ``'dynamic'``.
        combine_grad (bool): Ascend apex: unscale all gradients in one fused buffer.
            Defaults to True.
        float_functions (Sequence[tuple]): ``(module, function)`` pairs kept in fp32.
            Defaults to ``[('torch', 'sigmoid'), ('torch', 'softmax')]`` (the seed's).
        fallback (bool): Use native AMP when apex is missing. Defaults to True.
    """

    priority = 'VERY_HIGH'  # set up AMP before any other hook sees the model or optimizer

    def __init__(self,
                 opt_level: str = 'O1',
                 loss_scale: Union[str, float] = 'dynamic',
                 combine_grad: bool = True,
                 float_functions: Sequence[Tuple[str, str]] = (('torch', 'sigmoid'),
                                                               ('torch', 'softmax')),
                 fallback: bool = True) -> None:
        if opt_level not in OPT_LEVELS:
            raise ExplainedValueError(
                f'ApexAmpHook.opt_level={opt_level!r} must be one of {OPT_LEVELS}')
        if loss_scale != 'dynamic' and not isinstance(loss_scale, (int, float)):
            raise ExplainedValueError(
                f'ApexAmpHook.loss_scale={loss_scale!r} must be "dynamic" or a '
                'number')
        self.opt_level = opt_level
        self.loss_scale = loss_scale
        self.combine_grad = combine_grad
        self.float_functions = [tuple(pair) for pair in float_functions]
        self.fallback = fallback

    def before_run(self, runner) -> None:
        if not isinstance(runner.optim_wrapper, OptimWrapper):
            return  # a test or validation run: nothing is optimised
        apex = device.apex()
        if apex is None:
            self._native_amp(runner)
            return
        if isinstance(runner.optim_wrapper, AmpOptimWrapper):
            raise ExplainedValueError(
                'ApexAmpHook and optim_wrapper.type=AmpOptimWrapper (e.g. from '
                '--amp) both ask for mixed precision: keep one of them.')
        amp = importlib.import_module('apex.amp')
        optimizer = self._apex_optimizer(runner.optim_wrapper.optimizer)
        for module_name, function in self.float_functions:
            amp.register_float_function(importlib.import_module(module_name), function)
        wrapped = is_model_wrapper(runner.model)
        bare = runner.model.module if wrapped else runner.model
        kwargs: dict = dict(opt_level=self.opt_level, loss_scale=self.loss_scale)
        if self.combine_grad:
            if 'combine_grad' in inspect.signature(amp.initialize).parameters:
                kwargs['combine_grad'] = True
            else:
                print_log('The installed apex has no combine_grad (it is not Ascend apex): '
                          'running apex AMP without it.', logger='current',
                          level=logging.WARNING)
        bare, optimizer = amp.initialize(bare, optimizer, **kwargs)
        old_model = runner.model
        runner.model = runner.wrap_model(runner.cfg.get('model_wrapper_cfg'), bare) \
            if wrapped else bare
        del old_model  # the first DDP wrapper (and its gradient hooks) goes away
        rewrap_optimizer(runner, ApexAmpOptimWrapper(optimizer=optimizer, amp=amp))
        print_log(f'apex AMP on {device.device_type()}: opt_level={self.opt_level}, '
                  f'loss_scale={self.loss_scale}, combine_grad={"combine_grad" in kwargs}, '
                  f'optimizer {type(optimizer).__module__}.{type(optimizer).__name__}',
                  logger='current')

    def _apex_optimizer(self, optimizer: Any) -> Any:
        """torch_npu's NpuFusedSGD becomes apex's (which steps only under apex AMP)."""
        if device.sgd_implementation(apex_amp=True) != 'apex':
            return optimizer
        if not isinstance(optimizer, fused_sgd_class('torch_npu')):
            return optimizer
        apex_cls = fused_sgd_class('apex')
        defaults = {k: optimizer.defaults[k] for k in
                    ('lr', 'momentum', 'dampening', 'weight_decay', 'nesterov')}
        return apex_cls([dict(group) for group in optimizer.param_groups], **defaults)

    def _native_amp(self, runner) -> None:
        if not self.fallback:
            raise ExplainedRuntimeError(
                'ApexAmpHook(fallback=False): apex is not installed. On Ascend, build Ascend '
                "apex against your torch_npu (README, 'Ascend NPU'); or set fallback=True to "
                "use the device's native AMP.")
        flavour = device.amp_flavour()
        if isinstance(runner.optim_wrapper, AmpOptimWrapper):
            print_log(f'apex is not installed: ApexAmpHook leaves AMP to the configured '
                      f'AmpOptimWrapper ({flavour}).', logger='current', level=logging.WARNING)
            return
        if device.amp_wrapper_type() == 'CpuAmpOptimWrapper':
            wrapper = CpuAmpOptimWrapper(optimizer=runner.optim_wrapper.optimizer)
        else:
            wrapper = AmpOptimWrapper(optimizer=runner.optim_wrapper.optimizer,
                                      loss_scale='dynamic',
                                      dtype='bfloat16' if flavour == 'bf16' else 'float16')
        rewrap_optimizer(runner, wrapper)
        print_log(f'apex is not installed: ApexAmpHook falls back to native AMP ({flavour} '
                  f'autocast on {device.device_type()}).', logger='current',
                  level=logging.WARNING)
