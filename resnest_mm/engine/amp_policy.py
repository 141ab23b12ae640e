"""Which mixed precision a run gets, decided in one place.

mmengine leaves the choice to whoever writes ``optim_wrapper.type``, and on Ascend SoCs below
220 overrides it silently; it has no apex set-up in the order Ascend's apex requires and no AMP
on the CPU. resnest_mm's answer is decided here, from three inputs:

* the config: ``optim_wrapper`` (its ``type`` and ``dtype``), whether apex AMP is asked for
  (an ``ApexAmpHook``, as a config dict or built), ``--amp [--amp-dtype]``;
* the device and the installed packages, as :class:`DeviceFacts` (read from
  :mod:`resnest_mm.device`, the one module that knows devices).

Its output is an :class:`AmpPlan`: the flavour (``off``, ``apex``, ``fp16``, ``bf16``), the
autocast dtype, the optimizer wrapper (with its config) and what to tell the user. Who asks:

* ``tools/train.py --amp`` (:func:`apply_amp_flag`): the config's wrapper becomes the device's
  AMP wrapper, unless the config has ``ApexAmpHook``;
* ``ResNeStRunner.build_optim_wrapper`` (:func:`decide`, :meth:`AmpPlan.optim_wrapper_cfg`):
  builds the decided wrapper once, runs apex's ``amp.initialize`` on the bare model and builds
  the model wrapper (DDP) after it; ``ResNeStRunner.wrap_model``
  (:func:`model_wrapper_after_optimizer`) leaves the model unwrapped until then;
* ``ApexAmpHook`` carries the request (:class:`ApexSettings`, found by :func:`apex_request`)
  and checks that the plan was applied (:func:`check_applied`);
* ``RunSummaryHook`` (:func:`runs_mixed_precision`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

import torch
from mmengine.optim import AmpOptimWrapper

from .. import device
from ..registry import OPTIMIZERS, bare_type, scoped
from ..utils.errors import ExplainedRuntimeError, ExplainedValueError
from .optimizers.apex_amp_optim_wrapper import ApexAmpOptimWrapper
from .optimizers.npu_fused_sgd import build_npu_fused_sgd

OPT_LEVELS = ('O0', 'O1', 'O2', 'O3')
# the wrappers of the device's own AMP: mmengine's on an accelerator, ours on the CPU
NATIVE_WRAPPERS = ('AmpOptimWrapper', 'CpuAmpOptimWrapper')
# what --amp and ApexAmpHook may switch to mixed precision
SWITCHABLE_WRAPPERS = ('OptimWrapper', ) + NATIVE_WRAPPERS
# the wrappers resnest_mm registers (in its scope)
OURS = ('CpuAmpOptimWrapper', 'ApexAmpOptimWrapper')


@dataclasses.dataclass(frozen=True)
class DeviceFacts:
    """What the decision needs to know of the machine.

    Args:
        kind (str): The device type (``npu``, ``cuda``, ``cpu``).
        apex_installed (bool): apex with its ``amp`` module can be imported.
        full_precision (bool): The device computes fp32 work in fp32 (False on Ascend SoCs
            below 220). Defaults to True.
    """

    kind: str
    apex_installed: bool
    full_precision: bool = True

    @classmethod
    def here(cls, apex_asked: bool = True) -> DeviceFacts:
        """The facts of this process's device (:mod:`resnest_mm.device`); apex is looked for
        (imported, where installed) only when ``apex_asked``."""
        return cls(device.device_type(), apex_asked and device.apex() is not None,
                   device.npu_full_precision())


@dataclasses.dataclass(frozen=True)
class ApexSettings:
    """apex AMP as asked for by ``ApexAmpHook`` (its arguments; see the hook for each).

    Raises:
        ValueError: an unknown ``opt_level`` or a ``loss_scale`` that is neither ``'dynamic'``
            nor a number.
    """

    opt_level: str = 'O1'
    loss_scale: Union[str, float] = 'dynamic'
    combine_grad: bool = True
    float_functions: Tuple[Tuple[str, str], ...] = (('torch', 'sigmoid'), ('torch', 'softmax'))
    fallback: bool = True

    def __post_init__(self) -> None:
        if self.opt_level not in OPT_LEVELS:
            raise ExplainedValueError(
                f'ApexAmpHook.opt_level={self.opt_level!r} must be one of {OPT_LEVELS}')
        if self.loss_scale != 'dynamic' and (isinstance(self.loss_scale, bool) or
                                             not isinstance(self.loss_scale, (int, float))):
            raise ExplainedValueError(
                f'ApexAmpHook.loss_scale={self.loss_scale!r} must be "dynamic" or a number')
        # frozen: a config's lists become the tuples this class holds
        object.__setattr__(self, 'float_functions',
                           tuple(tuple(pair) for pair in self.float_functions))


@dataclasses.dataclass(frozen=True)
class AmpPlan:
    """The mixed precision of a run.

    Args:
        flavour (str): ``'off'``, ``'apex'``, ``'fp16'`` or ``'bf16'`` (native autocast).
        wrapper_type (str): The optimizer wrapper to build.
        dtype (torch.dtype, optional): The autocast dtype (apex O1: fp16); None when off.
        loss_scale: ``'dynamic'``, a static scale, or None (no loss scaling).
        apex (ApexSettings, optional): apex's arguments when the flavour is ``'apex'``.
        note (str, optional): What the run should say about the choice (a warning).
        switch (bool): The configured wrapper is replaced by ``wrapper_type``.
    """

    flavour: str
    wrapper_type: str
    dtype: Optional[torch.dtype] = None
    loss_scale: Any = None
    apex: Optional[ApexSettings] = None
    note: Optional[str] = None
    switch: bool = False

    @property
    def mixed(self) -> bool:
        """Whether the run computes in mixed precision."""
        return self.flavour != 'off'

    def optim_wrapper_cfg(self, cfg: Mapping) -> dict:
        """A copy of the ``optim_wrapper`` config ``cfg`` that builds this plan's wrapper."""
        out = dict(cfg)
        if self.apex is not None:
            out.update(type=scoped('ApexAmpOptimWrapper'), opt_level=self.apex.opt_level,
                       loss_scale=self.apex.loss_scale, combine_grad=self.apex.combine_grad,
                       float_functions=[list(p) for p in self.apex.float_functions])
            optimizer = out.get('optimizer')
            if isinstance(optimizer, Mapping) and _is_our_npu_fused_sgd(optimizer.get('type')):
                # apex's NpuFusedSGD where it exists (it steps only under amp.initialize)
                out['optimizer'] = dict(optimizer, apex_amp=True)
        elif self.switch:
            # ours by their scoped name: the config's default scope may be mmpretrain's
            out['type'] = scoped(self.wrapper_type) if self.wrapper_type in OURS \
                else self.wrapper_type
            out.setdefault('dtype', str(self.dtype).replace('torch.', ''))
            if self.loss_scale is not None:
                out.setdefault('loss_scale', self.loss_scale)
        return out


def _is_our_npu_fused_sgd(kind: Any) -> bool:
    """Whether an optimizer type resolves to resnest_mm's ``NpuFusedSGD`` builder (mmengine's
    root registry holds torch_npu's class under the same name on NPU machines)."""
    return isinstance(kind, str) and bare_type(kind) == 'NpuFusedSGD' and \
        OPTIMIZERS.get(kind) is build_npu_fused_sgd


def _native(kind: str, dtype: Optional[torch.dtype] = None) -> Tuple[str, torch.dtype, Any]:
    """The device's own AMP: its flavour, dtype and loss scale (``dtype`` overrides the
    device's dtype)."""
    dtype = dtype or device.amp_dtype(kind)
    flavour = 'bf16' if dtype == torch.bfloat16 else 'fp16'
    return flavour, dtype, 'dynamic' if device.needs_loss_scaling(dtype) else None


def _dtype(value: Any) -> Optional[torch.dtype]:
    """A configured dtype (``'float16'``, ``torch.bfloat16`` or None) as a torch dtype."""
    if value is None or isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).replace('torch.', ''), None)
    if not isinstance(dtype, torch.dtype):
        raise ExplainedValueError(f'optim_wrapper.dtype={value!r} is not a torch dtype: use '
                                  '"float16" or "bfloat16"')
    return dtype


def _precision_advice(wrapper_type: str) -> str:
    """What a run without mixed precision computes on an Ascend SoC below 220."""
    return (f'This Ascend SoC (version < 220, 910A family) computes fp32 convolutions and matrix '
            f'products in fp16 inside CANN (precision mode allow_fp32_to_fp16) without loss '
            f'scaling, so small gradients can underflow; mmengine would silently replace '
            f'optim_wrapper.type={wrapper_type} with AmpOptimWrapper here. resnest_mm keeps '
            f'{wrapper_type} as configured: pass --amp (fp16 autocast with dynamic loss '
            'scaling) or keep the ImageNet configs\' ApexAmpHook for scaled mixed precision.')


def decide(wrapper_cfg: Mapping, apex: Optional[ApexSettings] = None,
           facts: Optional[DeviceFacts] = None) -> AmpPlan:
    """The mixed precision of a run: the one place that decides it.

    ================================  =====================  ================================
    asked for                         apex installed         apex not installed
    ================================  =====================  ================================
    nothing (``OptimWrapper``)        off                    off (advice on Ascend SoC < 220)
    ``AmpOptimWrapper`` (``--amp``)   native, as configured  native, as configured
    ``ApexAmpHook``                   apex                   native (``fallback``, a warning)
    ``ApexAmpHook`` + native wrapper  refused: keep one      native, as configured
    ================================  =====================  ================================

    Native AMP is fp16 autocast with dynamic loss scaling on GPU and NPU (``AmpOptimWrapper``)
    and bf16 autocast without scaling on CPU (``CpuAmpOptimWrapper``: mmengine's wrapper
    asserts an accelerator).

    Args:
        wrapper_cfg (Mapping): The ``optim_wrapper`` config (its ``type`` and ``dtype``).
        apex (ApexSettings, optional): apex AMP asked for (``ApexAmpHook``). Defaults to None.
        facts (DeviceFacts, optional): The machine. Defaults to :meth:`DeviceFacts.here`.

    Raises:
        ValueError: a combination that cannot run, in one sentence naming the key.
        RuntimeError: ``ApexAmpHook(fallback=False)`` without apex.
    """
    facts = facts or DeviceFacts.here(apex_asked=apex is not None)
    wanted = bare_type(wrapper_cfg.get('type', 'OptimWrapper'))
    if wanted == 'AmpOptimWrapper' and device.amp_wrapper_type(facts.kind) != wanted:
        raise ExplainedValueError(
            "optim_wrapper.type='AmpOptimWrapper' needs a GPU or NPU (mmengine asserts "
            "one); on the CPU use type='CpuAmpOptimWrapper' (bf16 autocast), which --amp "
            'selects by itself.')
    if wanted == 'ApexAmpOptimWrapper' and apex is None:
        raise ExplainedValueError(
            "optim_wrapper.type='ApexAmpOptimWrapper' is set up by ApexAmpHook: keep "
            "optim_wrapper.type='OptimWrapper' and add dict(type='resnest_mm.ApexAmpHook') to "
            'custom_hooks.')
    if wanted in NATIVE_WRAPPERS:
        if apex is not None and facts.apex_installed:
            raise ExplainedValueError(
                'ApexAmpHook and optim_wrapper.type=AmpOptimWrapper (e.g. from '
                '--amp) both ask for mixed precision: keep one of them.')
        flavour, dtype, loss_scale = _native(facts.kind, _dtype(wrapper_cfg.get('dtype')))
        note = None
        if apex is not None:
            note = (f'apex is not installed: ApexAmpHook leaves AMP to the configured '
                    f'{wanted} ({flavour}).')
        return AmpPlan(flavour, wanted, dtype, wrapper_cfg.get('loss_scale', loss_scale),
                       note=note)
    if apex is None:
        note = None if facts.full_precision else _precision_advice(wanted)
        return AmpPlan('off', wanted, note=note)
    if wanted not in SWITCHABLE_WRAPPERS + ('ApexAmpOptimWrapper', ):
        raise ExplainedValueError(
            f'ApexAmpHook: optim_wrapper.type={wanted} is not an optimizer wrapper the hook '
            'knows how to switch to mixed precision; use OptimWrapper, or drop the hook and '
            'set up mixed precision in your wrapper.')
    if facts.apex_installed:
        return AmpPlan('apex', 'ApexAmpOptimWrapper', torch.float16, apex.loss_scale, apex=apex)
    if not apex.fallback:
        raise ExplainedRuntimeError(
            'ApexAmpHook(fallback=False): apex is not installed. On Ascend, build Ascend '
            "apex against your torch_npu (docs/devices.md, 'Ascend NPU'); or set "
            "fallback=True to use the device's native AMP.")
    flavour, dtype, loss_scale = _native(facts.kind)
    return AmpPlan(flavour, device.amp_wrapper_type(facts.kind), dtype, loss_scale, switch=True,
                   note=f'apex is not installed: ApexAmpHook falls back to native AMP '
                        f'({flavour} autocast on {facts.kind}).')


def apex_request(hooks: Iterable[Any]) -> Optional[ApexSettings]:
    """The apex AMP asked for by a list of hooks, built (their ``amp_request``) or config
    dicts (``type='ApexAmpHook'`` with its arguments); None when none asks."""
    for hook in hooks or ():
        if isinstance(hook, Mapping):
            if hook.get('type') is not None and bare_type(hook['type']) == 'ApexAmpHook':
                return ApexSettings(**{k: v for k, v in hook.items() if k != 'type'})
        elif isinstance(getattr(hook, 'amp_request', None), ApexSettings):
            return hook.amp_request
    return None


def apex_request_in_cfg(cfg: Mapping) -> Optional[ApexSettings]:
    """The apex AMP a config asks for (``ApexAmpHook`` in ``default_hooks`` or
    ``custom_hooks``)."""
    hooks = [h for h in (cfg.get('default_hooks') or {}).values() if h is not None]
    return apex_request(hooks + list(cfg.get('custom_hooks') or []))


def apply_amp_flag(cfg: Any, dtype_name: Optional[str] = None,
                   facts: Optional[DeviceFacts] = None) -> str:
    """``--amp [--amp-dtype D]``: switch the config to the device's mixed precision.

    A config with ``ApexAmpHook`` keeps it (apex where installed, else the hook's native
    fallback); otherwise ``cfg.optim_wrapper`` becomes the device's AMP wrapper
    (``AmpOptimWrapper`` with fp16, or ``dtype_name``, and dynamic loss scaling where the dtype
    needs it on GPU and NPU; ``CpuAmpOptimWrapper``, bf16, on CPU).

    Args:
        cfg (Config): The config, changed in place.
        dtype_name (str, optional): ``--amp-dtype``. Defaults to None (the device's dtype).
        facts (DeviceFacts, optional): The machine. Defaults to :meth:`DeviceFacts.here`.

    Returns:
        str: The sentence to log.
    """
    apex = apex_request_in_cfg(cfg)
    facts = facts or DeviceFacts.here(apex_asked=apex is not None)
    if apex is not None:
        if dtype_name:
            raise ExplainedValueError(
                '--amp-dtype: this config sets up mixed precision with ApexAmpHook (apex O1, '
                'or its native fallback); to choose the dtype, drop the hook: --cfg-options '
                'default_hooks.apex_amp=None')
        plan = decide(cfg.optim_wrapper, apex, facts)
        return f'--amp: the config has ApexAmpHook; it sets up mixed precision ({plan.flavour}).'
    wanted = bare_type(cfg.optim_wrapper.get('type', 'OptimWrapper'))
    if wanted not in SWITCHABLE_WRAPPERS:
        raise ExplainedValueError(f'--amp: optim_wrapper.type={wanted} is not an optimizer '
                                  'wrapper --amp knows how to switch; set the AMP wrapper in the '
                                  'config instead.')
    kind = facts.kind
    flavour, dtype, loss_scale = _native(kind, _dtype(dtype_name))
    plan = AmpPlan(flavour, device.amp_wrapper_type(kind), dtype, loss_scale, switch=True)
    cfg.optim_wrapper = plan.optim_wrapper_cfg(cfg.optim_wrapper)
    scaling = 'dynamic loss scaling' if loss_scale else 'no loss scaling'
    return f'--amp: {cfg.optim_wrapper["dtype"]} autocast on {kind} ({scaling}).'


def model_wrapper_after_optimizer() -> bool:
    """Whether a distributed training run builds its model wrapper (DDP) only after the
    optimizer wrapper, instead of when the runner is made (mmengine's order).

    True where apex is installed: Ascend's apex requires ``amp.initialize`` on the bare model
    before any DDP wrapper, and needs the optimizer, which mmengine builds only in ``train()``.
    Elsewhere mmengine's order stays.
    """
    return device.apex() is not None


def runs_mixed_precision(optim_wrapper: Any) -> bool:
    """Whether a built optimizer wrapper trains in mixed precision (native or apex)."""
    return isinstance(optim_wrapper, (AmpOptimWrapper, ApexAmpOptimWrapper))


def check_applied(optim_wrapper: Any) -> None:
    """Refuse a training run whose ``ApexAmpHook`` was not applied (the run would train in
    fp32 without a word): the plan is applied by ``ResNeStRunner`` when it builds the optimizer
    wrapper from the ``optim_wrapper`` config.

    Raises:
        RuntimeError: naming the wrapper and what to change.
    """
    if isinstance(optim_wrapper, ApexAmpOptimWrapper) and optim_wrapper.amp_initialized:
        return
    if not isinstance(optim_wrapper, ApexAmpOptimWrapper) and runs_mixed_precision(optim_wrapper):
        return
    raise ExplainedRuntimeError(
        f'ApexAmpHook: the optimizer wrapper ({type(optim_wrapper).__name__}) was not set up '
        "for mixed precision. resnest_mm's AMP policy applies it when ResNeStRunner builds the "
        "optimizer wrapper: set runner_type='resnest_mm.ResNeStRunner' (the _base_ "
        'default_runtime.py does) and give optim_wrapper as a config dict, not a built wrapper.')
