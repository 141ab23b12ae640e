"""STAND-IN for Ascend apex's ``apex.amp`` (contract tests only; tests/helpers/standins/README.md).

Ascend apex is NVIDIA apex (``apex/amp/*.py`` before NVIDIA/apex cb65b8ed removed amp) plus
``patch/npu.patch`` (Ascend/apex master, Nov 2023). This stand-in computes what they compute for
O0 and O1, in fp32 (it casts no function to fp16), and refuses what they refuse (each refusal
names its source below). What it computes:

* **loss scaling** (``scaler.py`` ``LossScaler``): ``scale_loss`` yields ``loss.float() * scale``
  and unscales the gradients on exit (one ``mul_`` per combined buffer, or per gradient);
  dynamic scaling checks them for inf/NaN (``torch._amp_foreach_non_finite_check_and_unscale_``,
  what the patch uses on inf/nan SoCs); an overflow turns the next ``optimizer.step()`` into a
  one-shot skip (``handle.py``) and multiplies the scale by ``scale_backoff_factor``;
  ``scale_window`` good steps multiply it by ``scale_growth_factor`` (capped at
  ``max_loss_scale``); a number as ``loss_scale`` is a static scale, never skipped; a static 1.0
  short-circuits (``yield loss.float()``);
* **gradient accumulation**: gradients present at ``scale_loss`` entry are stashed and added
  back, unscaled, on exit (``prepare_backward_*`` / ``post_backward_*``);
* **combined gradients** (``combine_grad=True`` or an NPU fused optimizer,
  ``combined_init_no_master_weights``): after the first backward, the gradients that exist are
  moved into one buffer per dtype; parameters without a gradient then are dropped for good (their
  later gradients are neither unscaled nor checked); ``optimizer.zero_grad`` becomes a function
  of no arguments zeroing the buffers (a ``set_to_none`` keyword raises ``TypeError``);
* **process-wide** ``torch.nn.Module.zero_grad`` replaced by one asserting ``set_to_none is
  False`` (``_initialize.py``), as real apex does, for good; the ``standin_apex`` fixture
  restores torch's;
* ``state_dict`` / ``load_state_dict`` as upstream ``frontend.py``.

Every call is recorded in ``CALLS``. O2/O3 (fp16 model copies, master weights) are not
simulated: after their option checks they raise ``NotImplementedError``.
"""
from __future__ import annotations

import contextlib
import types
from typing import Any, Dict, List, Optional

import torch

from tests.helpers.standins.combined import STANDIN_NPU, combine_by_dtype

CALLS: List[tuple] = []
STATE: Dict[str, Any] = {}
OPT_LEVELS = {  # upstream frontend.py O0-O3
    'O0': dict(cast_model_type=torch.float32, patch_torch_functions=False,
               keep_batchnorm_fp32=None, master_weights=False, loss_scale=1.0),
    'O1': dict(cast_model_type=None, patch_torch_functions=True, keep_batchnorm_fp32=None,
               master_weights=None, loss_scale='dynamic'),
    'O2': dict(cast_model_type=torch.float16, patch_torch_functions=False,
               keep_batchnorm_fp32=True, master_weights=True, loss_scale='dynamic'),
    'O3': dict(cast_model_type=torch.float16, patch_torch_functions=False,
               keep_batchnorm_fp32=False, master_weights=False, loss_scale=1.0),
}


def reset() -> None:
    """Forget every call and all amp state (a fresh process, for the next test)."""
    CALLS.clear()
    STATE.clear()
    STATE.update(initialized=False, properties=None, loss_scalers=[], optimizers=[],
                 float_functions=[], cast_registry=None)


reset()


def warn_or_err(message: str) -> None:
    """Upstream ``_amp_state.py``: an error unless ``hard_override`` (never set here)."""
    raise RuntimeError(message)


def register_float_function(module: Any, name: str) -> None:
    """Upstream ``amp.py``: ``ValueError`` for a missing attribute; read by ``initialize``."""
    if not hasattr(module, name):
        raise ValueError(f'No function named {name} in module {module}.')
    STATE['float_functions'].append((module.__name__, name))
    CALLS.append(('register_float_function', module.__name__, name, STATE['initialized']))


class LossScaler:
    """Upstream ``scaler.py`` ``LossScaler`` with the patch's growth and back-off factors."""

    def __init__(self, loss_scale: Any, init_scale: float = 2.**16,
                 scale_growth_factor: float = 2., scale_backoff_factor: float = 0.5,
                 scale_window: int = 2000, min_loss_scale: Optional[float] = None,
                 max_loss_scale: float = 2.**24) -> None:
        self.dynamic = loss_scale == 'dynamic'
        self._loss_scale = min(max_loss_scale, init_scale) if self.dynamic else loss_scale
        self._growth, self._backoff = scale_growth_factor, scale_backoff_factor
        self._window, self._min, self._max = scale_window, min_loss_scale, max_loss_scale
        self._unskipped = 0
        self._has_overflow = False

    def loss_scale(self) -> float:
        return self._loss_scale

    def clear_overflow_state(self) -> None:
        self._has_overflow = False

    def unscale(self, grads: List[torch.Tensor], stashed: List[Optional[torch.Tensor]]) -> None:
        """Unscale ``grads`` in place and add the stashed (already unscaled) gradients."""
        if self._has_overflow or not grads:
            return
        inv_scale = torch.full((1,), 1.0 / self._loss_scale, device=STANDIN_NPU)
        if self.dynamic:
            found_inf = torch.zeros(1, device=STANDIN_NPU)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)
            if found_inf.item() > 0:
                self._has_overflow = True
                return
        else:
            for grad in grads:
                grad.mul_(inv_scale)
        for grad, old in zip(grads, stashed):
            if old is not None:
                grad.add_(old)

    def update_scale(self) -> bool:
        """After a backward: back off and skip on overflow, grow after ``scale_window``."""
        should_skip = self._has_overflow and self.dynamic
        if should_skip:
            self._loss_scale *= self._backoff
            if self._min:
                self._loss_scale = max(self._min, self._loss_scale)
            self._unskipped = 0
        else:
            self._unskipped += 1
        if self._unskipped == self._window and self.dynamic:
            self._loss_scale = min(self._max, self._loss_scale * self._growth)
            self._unskipped = 0
        return should_skip


def _properties(opt_level: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """Upstream ``frontend.py`` ``Properties`` (+ the patch's options) with their checks."""
    props = dict(OPT_LEVELS[opt_level], opt_level=opt_level, combine_grad=None,
                 combine_ddp=None, ddp_replica_count=4, user_cast_preferred=None,
                 check_combined_tensors=None)
    for name, value in overrides.items():
        if value is None:
            continue
        if name == 'cast_model_type' and opt_level == 'O1' and value not in (False,
                                                                              torch.float32):
            warn_or_err('O1 inserts casts around Torch functions rather than model weights, '
                        f'so with O1 the model weights should remain FP32; got {value}')
        elif name == 'patch_torch_functions' and opt_level != 'O1' and value:
            warn_or_err("Currently, patch_torch_functions=True should only be set by selecting "
                        "opt_level='O1'.")
        elif name == 'keep_batchnorm_fp32' and opt_level == 'O1':
            warn_or_err('With opt_level O1, batchnorm functions are automatically patched to '
                        'run in FP32, so keep_batchnorm_fp32 should be None.')
        elif name == 'master_weights' and opt_level == 'O1':
            warn_or_err("It doesn't make sense to use master_weights with O1. With O1, your "
                        'model weights themselves should be FP32.')
        elif name in ('combine_grad', 'check_combined_tensors') and value \
                and opt_level not in ('O1', 'O2'):  # patch: frontend.py
            warn_or_err('Currently, combine_grad=True or check_combined_tensors=True should '
                        "only be set by selecting opt_level='O1' or opt_level='O2'.")
        elif name == 'combine_ddp' and not props['combine_grad']:  # patch: frontend.py
            warn_or_err('Combine_grad should be True when combine_ddp using.')
        elif name == 'user_cast_preferred' and value and opt_level != 'O1':  # patch
            warn_or_err("Currently, user_cast_preferred=True should only be set by selecting "
                        "opt_level='O1'.")
        if name == 'loss_scale' and value != 'dynamic':
            value = float(value)
        props[name] = value
    return props


def _check_models(models: List[torch.nn.Module]) -> None:
    """Upstream ``_initialize.py`` ``check_models`` and ``check_params_fp32`` (the patch's
    wording: parameters must be NPU FloatTensors; the stand-in's NPU is the CPU)."""
    for model in models:
        for wrapper in (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel):
            if isinstance(model, wrapper):
                raise RuntimeError(
                    f'Incoming model is an instance of {wrapper.__module__}.{wrapper.__name__}. '
                    'Parallel wrappers should only be applied to the model(s) AFTER \n'
                    'the model(s) have been returned from amp.initialize.')
        tensors = list(model.named_parameters()) + list(model.named_buffers())
        for name, tensor in tensors:
            if not tensor.is_floating_point():
                continue
            if tensor.dtype == torch.float16:
                warn_or_err(f'Found param {name} with type {tensor.type()}, expected '
                            'torch.npu.FloatTensor. When using amp.initialize, you do not need '
                            'to call .half() on your model before passing it.')
            if tensor.device.type != STANDIN_NPU:
                warn_or_err(f'Found param {name} with type {tensor.type()}, expected '
                            "torch.npu.FloatTensor: use model.to('npu') before amp.initialize.")


def _asserting_module_zero_grad(self: torch.nn.Module, set_to_none: bool = False) -> None:
    """The patch's ``torch.nn.Module.zero_grad`` (``_initialize.py``)."""
    assert set_to_none is False, 'For combined grad, `set_to_none` must be False.'
    for p in self.parameters():
        if p.grad is not None:
            if p.grad.grad_fn is not None:
                p.grad.detach_()
            else:
                p.grad.requires_grad_(False)
            p.grad.zero_()


def _optimizer_params(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    params = [p for g in optimizer.param_groups for p in g['params'] if p.requires_grad]
    for p in params:  # upstream lazy_init_no_master_weights
        if p.dtype not in (torch.float32, torch.float16):
            raise TypeError("Optimizer's parameters must be either torch.npu.FloatTensor or "
                            f'torch.npu.HalfTensor. Received {p.type()}')
    return params


def _process_optimizer(optimizer: torch.optim.Optimizer, props: Dict[str, Any]) -> None:
    """Upstream ``_process_optimizer.py`` with the patch's fused-optimizer rules."""
    if hasattr(optimizer, '_amp_stash'):
        raise RuntimeError('A given optimizer should only be passed through amp.initialize once.')
    fused = getattr(optimizer, 'is_npu_fused_optimizer', False) is True
    if fused and props['opt_level'] not in ('O1', 'O2'):
        raise RuntimeError("Currently, npu fused optimizer can only be used when opt_level='O1' "
                           "or opt_level='O2'")
    if (props['combine_grad'] or fused) and props['opt_level'] == 'O2' \
            and props['master_weights'] is not True:
        raise RuntimeError('With opt_level O2, master_weights should be True when combine_grad '
                           'is True or npu fused optimizer is used')
    if props['master_weights']:
        raise NotImplementedError('the apex stand-in simulates O0/O1 only (no master weights)')
    optimizer.is_npu_fused_optimizer = fused
    stash = types.SimpleNamespace(
        accelerate=bool(props['combine_grad']), fused=fused, params=None, stashed=None,
        combined=None, process_zero_grad=True, params_have_scaled_gradients=False,
        already_patched=False)
    optimizer._amp_stash = stash
    if stash.accelerate or fused:
        original_zero_grad = optimizer.zero_grad

        def zero_grad(self: torch.optim.Optimizer) -> None:  # no arguments, as the patch's
            self._amp_stash.process_zero_grad = True
            if self._amp_stash.combined is None:
                original_zero_grad()
                return
            for entry in self._amp_stash.combined.values():
                entry.grads.zero_()

        optimizer.zero_grad = types.MethodType(zero_grad, optimizer)
    if fused:  # the patch resets the combined momentum when a state is loaded
        original_load = optimizer.load_state_dict

        def load_state_dict(self: torch.optim.Optimizer, state_dict: dict) -> None:
            original_load(state_dict)
            self._combined_momentum = None

        optimizer.load_state_dict = types.MethodType(load_state_dict, optimizer)


def initialize(models, optimizers=None, enabled=True, opt_level='O1', cast_model_type=None,
               patch_torch_functions=None, keep_batchnorm_fp32=None, master_weights=None,
               loss_scale=None, cast_model_outputs=None, num_losses=1, verbosity=1,
               dynamic_init_scale=2.**16, scale_growth_factor=2., scale_backoff_factor=0.5,
               scale_window=2000, min_loss_scale=None, max_loss_scale=2.**24, combine_grad=None,
               combine_ddp=None, ddp_replica_count=4, user_cast_preferred=None,
               check_combined_tensors=None):
    """Ascend apex's signature (the patch's ``frontend.py``); O0/O1 simulated."""
    CALLS.append(('initialize', models, optimizers,
                  dict(opt_level=opt_level, loss_scale=loss_scale, combine_grad=combine_grad)))
    if not enabled:
        return models if optimizers is None else (models, optimizers)
    if opt_level not in OPT_LEVELS:
        raise RuntimeError(f"Unexpected optimization level {opt_level}. Options are 'O0', 'O1', "
                           "'O2', 'O3'.")
    props = _properties(opt_level, dict(
        cast_model_type=cast_model_type, patch_torch_functions=patch_torch_functions,
        keep_batchnorm_fp32=keep_batchnorm_fp32, master_weights=master_weights,
        loss_scale=loss_scale, combine_grad=combine_grad, combine_ddp=combine_ddp,
        ddp_replica_count=ddp_replica_count, user_cast_preferred=user_cast_preferred,
        check_combined_tensors=check_combined_tensors))
    # upstream _initialize.py
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizer_list = [optimizers]
    elif optimizers is None:
        optimizer_list = []
    elif isinstance(optimizers, list):
        optimizer_list = optimizers
    else:
        raise TypeError('optimizers must be either a single optimizer or a list of optimizers.')
    if isinstance(models, torch.nn.Module):
        model_list = [models]
    elif isinstance(models, list):
        model_list = models
    else:
        raise TypeError('models must be either a single model or a list of models.')
    _check_models(model_list)
    for optimizer in optimizer_list:
        _process_optimizer(optimizer, props)
    if props['cast_model_type'] not in (None, torch.float32):
        raise NotImplementedError('the apex stand-in simulates O0/O1 only (no fp16 model)')
    STATE.update(initialized=True, properties=props, optimizers=optimizer_list,
                 cast_registry=list(STATE['float_functions']) if props['patch_torch_functions']
                 else [],
                 loss_scalers=[LossScaler(props['loss_scale'], dynamic_init_scale,
                                          scale_growth_factor, scale_backoff_factor, scale_window,
                                          min_loss_scale, max_loss_scale)
                               for _ in range(num_losses)])
    if props['combine_grad'] or any(o.is_npu_fused_optimizer for o in optimizer_list):
        torch.nn.Module.zero_grad = _asserting_module_zero_grad  # as the patch, process-wide
    if props['combine_ddp']:
        for model in model_list:
            for param in model.parameters():
                torch.distributed.broadcast(param, 0)
    return models if optimizers is None else (models, optimizers)


def _prepare_backward(optimizer: torch.optim.Optimizer) -> None:
    stash = optimizer._amp_stash
    if stash.params is None:
        stash.params = _optimizer_params(optimizer)
    if stash.combined is not None:  # stash the buffers' sums for accumulation
        if stash.process_zero_grad:
            return
        for entry in stash.combined.values():
            entry.stash = entry.grads.clone()
            entry.grads.zero_()
        return
    stash.stashed = [p.grad for p in stash.params]
    for p in stash.params:
        p.grad = None


def combined_init(optimizer: torch.optim.Optimizer) -> None:
    """The patch's ``combined_init_no_master_weights``: once, the gradients that exist (and,
    for a fused optimizer, their params) move into one buffer per dtype; the rest are dropped."""
    stash = optimizer._amp_stash
    if stash.combined is not None or not (stash.accelerate or stash.fused):
        return
    if stash.params is None:
        stash.params = _optimizer_params(optimizer)
    stash.combined = combine_by_dtype(stash.params, with_params=stash.fused)
    stash.params = [p for entry in stash.combined.values() for p in entry.params]
    stash.stashed = None
    for entry in stash.combined.values():
        entry.stash = None


def _post_backward(optimizer: torch.optim.Optimizer, scaler: LossScaler) -> None:
    stash = optimizer._amp_stash
    combined_init(optimizer)
    if stash.combined is not None:
        entries = list(stash.combined.values())
        scaler.unscale([e.grads for e in entries],
                       [None if stash.process_zero_grad else e.stash for e in entries])
    else:
        grads, stashed = [], []
        for i, p in enumerate(stash.params):
            old = stash.stashed[i]
            if p.grad is None:
                p.grad = old
            else:
                grads.append(p.grad)
                stashed.append(old)
        scaler.unscale(grads, stashed)
        stash.stashed = None
    stash.process_zero_grad = False


def _skip_next_step(optimizer: torch.optim.Optimizer, scaler: LossScaler, loss_id: int) -> None:
    """Upstream ``handle.py``: the next ``step()`` only restores the real one."""
    stash = optimizer._amp_stash
    if stash.already_patched:
        return
    real_step = optimizer.step

    def skip_step(closure=None):
        CALLS.append(('skip_step', loss_id, scaler.loss_scale()))
        optimizer.step = real_step
        stash.already_patched = False

    optimizer.step = skip_step
    stash.already_patched = True


@contextlib.contextmanager
def scale_loss(loss, optimizers, loss_id=0, model=None, delay_unscale=False,
               delay_overflow_check=False):
    """Upstream ``handle.py`` ``scale_loss`` (O0/O1, no master weights)."""
    if not STATE['initialized']:
        raise RuntimeError("Invoked 'with amp.scale_loss`, but internal Amp state has not been "
                           'initialized. model, optimizer = amp.initialize(model, optimizer, '
                           'opt_level=...) must be called before `with amp.scale_loss`.')
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = [optimizers]
    scaler = STATE['loss_scalers'][loss_id]
    scale = scaler.loss_scale()
    CALLS.append(('scale_loss', scale))
    if not scaler.dynamic and scale == 1.0:
        yield loss.float()
        return
    if not delay_unscale:
        for optimizer in optimizers:
            if not optimizer._amp_stash.params_have_scaled_gradients:
                _prepare_backward(optimizer)
    yield loss.float() * scale
    if delay_unscale:
        for optimizer in optimizers:
            optimizer._amp_stash.params_have_scaled_gradients = True
        return
    scaler.clear_overflow_state()
    for optimizer in optimizers:
        _post_backward(optimizer, scaler)
        optimizer._amp_stash.params_have_scaled_gradients = False
    should_skip = False if delay_overflow_check else scaler.update_scale()
    if should_skip:
        for optimizer in optimizers:
            _skip_next_step(optimizer, scaler, loss_id)


def state_dict(destination=None) -> dict:
    """Upstream ``frontend.py``: only the loss scalers."""
    destination = {} if destination is None else destination
    for idx, scaler in enumerate(STATE['loss_scalers']):
        destination[f'loss_scaler{idx}'] = {'loss_scale': scaler.loss_scale(),
                                            'unskipped': scaler._unskipped}
    return destination


def load_state_dict(state_dict: dict) -> None:
    """Upstream ``frontend.py``: ``RuntimeError`` for keys without ``loss_scaler``."""
    CALLS.append(('load_state_dict', state_dict))
    unexpected = [key for key in state_dict if 'loss_scaler' not in key]
    scalers = iter(STATE['loss_scalers'])
    for key, value in state_dict.items():
        if 'loss_scaler' in key:
            scaler = next(scalers, None)
            if scaler is None:
                break
            scaler._loss_scale = value['loss_scale']
            scaler._unskipped = value['unskipped']
    if unexpected:
        raise RuntimeError('Error(s) in loading state_dict. Unexpected key(s) in state_dict: '
                           + ', '.join(f'"{k}"' for k in unexpected) + '. ')
