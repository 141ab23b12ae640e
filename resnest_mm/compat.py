"""Fixes for the pinned stack (torch 2.14, mmengine 0.10.7), applied once by :func:`apply`.

Each fix is small, says why it exists and which upstream issue it works around, and has a test
that shows the unpatched stack failing (:func:`unpatched` restores the originals for that).

1. **Checkpoint loading** (torch>=2.6 makes ``torch.load(weights_only=True)`` the default;
   open-mmlab/mmengine#1655). mmengine's checkpoints hold a ``HistoryBuffer`` whose pickle calls
   ``builtins.getattr`` (it pickles its statistics methods), so neither ``load_from`` nor
   ``--resume`` can read them. We pickle ``HistoryBuffer`` as plain data and allow-list it with
   the numpy types it stores; outside files (pretrained, converted, ``load_from``) keep loading
   with ``weights_only=True`` and a file that would run code is refused. Only ``Runner.resume``
   - our own checkpoints in our own work dir - uses a full unpickle, so checkpoints written
   before this fix still resume.
2. **AMP on CPU**: ``AmpOptimWrapper`` asserts a GPU/NPU is present (mmengine
   ``optim/optimizer/amp_optimizer_wrapper.py``; open-mmlab/mmpretrain#1556). On CPU, AMP
   means bf16 autocast, which needs no loss scaling. On CPUs without bf16 units PyTorch's bf16
   convolutions fall back to a reference kernel (38x slower for a ResNeSt-50 step here), so
   there convolutions get bf16-rounded operands and outputs but run on the fp32 kernels: the
   numbers of a bf16 convolution with fp32 accumulation, at fp32 speed.
3. **gloo DDP on CPU**: mmengine's ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` and
   uses the configured backend (``nccl`` in every OpenMMLab config), and ``Runner.wrap_model``
   passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module (both unchanged in
   mmengine 0.10.7). On CPU we skip ``set_device``, use gloo, and drop ``device_ids``.
4. **No silent AMP on older Ascend SoCs**: mmengine's ``build_optim_wrapper`` replaces whatever
   ``optim_wrapper.type`` the config names with ``AmpOptimWrapper`` when the NPU's SoC version is
   below 220 (910A), without a word (``optim/optimizer/builder.py``). We build the configured
   wrapper and log the decision instead.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import os
import re
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from mmengine.dist import utils as dist_utils
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.runner import Runner
from mmengine.runner import runner as runner_module
from mmengine.runner.checkpoint import CheckpointLoader
from torch.overrides import TorchFunctionMode

from . import device
from .utils.errors import ExplainedFileNotFoundError, ExplainedRuntimeError, ExplainedValueError

_MISSING = object()
# (owner, attribute) -> the original value (or _MISSING when we added the attribute).
_ORIGINALS: Dict[Tuple[Any, str], Any] = {}
_PATCHES: Dict[Tuple[Any, str], Any] = {}
_applied = False

# True while Runner.resume loads our own checkpoint: only then is a full unpickle allowed.
_TRUSTED_LOAD = contextvars.ContextVar('resnest_mm_trusted_load', default=False)


def _patch(owner: Any, name: str, new: Any) -> None:
    key = (owner, name)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) \
            else getattr(owner, name, _MISSING)
    _PATCHES[key] = new
    setattr(owner, name, new)


def _set_all(values: Dict[Tuple[Any, str], Any]) -> None:
    for (owner, name), value in values.items():
        if value is _MISSING:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, value)


# --- 1. checkpoint loading -------------------------------------------------------------------

def _numpy_safe_globals() -> List[Any]:
    """numpy types that an mmengine checkpoint stores (log history arrays, scalars such as eta)."""
    core = getattr(np, '_core', None) or np.core
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_)]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *dtype_classes]


SAFE_GLOBALS: List[Any] = [HistoryBuffer, *_numpy_safe_globals()]


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    # Only the data: the statistics methods are class-level and re-created on load, and their
    # pickle (builtins.getattr) is what weights_only loading must refuse.
    return {'max_length': self.max_length, '_log_history': self._log_history,
            '_count_history': self._count_history}


def _history_buffer_setstate(self: HistoryBuffer, state: dict) -> None:
    self.__dict__.update(state)
    self._set_default_statistics()


def _first_line(exc: BaseException) -> str:
    """The first line of an error message, without the terminal colour codes torch puts in."""
    return re.sub(r'\x1b\[[0-9;]*m', '', str(exc)).splitlines()[0]


def _load_from_local(filename: str, map_location: Any) -> Any:
    """mmengine's local-file loader, with ``weights_only`` decided by who asks."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise ExplainedFileNotFoundError(
            f'checkpoint {filename} does not exist: check the path given '
            'to load_from / --resume / the test checkpoint.')
    if _TRUSTED_LOAD.get():
        return torch.load(filename, map_location=map_location, weights_only=False)
    # Registered globally by apply(); again here because torch.serialization.safe_globals(...)
    # blocks elsewhere drop entries they shared with the global list on exit (seen in torch 2.14).
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError here
        raise ExplainedRuntimeError(
            f'{filename} could not be loaded as plain weights (torch.load with weights_only=True '
            f'refused it: {_first_line(exc)}). Weights from outside the run are never '
            'unpickled as code. If this is a ResNeSt checkpoint of the original package, timm or '
            'mmpretrain, convert it with tools/model_converters/resnest_to_mm.py; if it is a '
            'resume checkpoint of your own run, pass it to --resume instead.') from exc


@contextlib.contextmanager
def trusted_checkpoint_loading() -> Iterator[None]:
    """Allow a full unpickle for checkpoints loaded inside this block (our own resumes)."""
    token = _TRUSTED_LOAD.set(True)
    try:
        yield
    finally:
        _TRUSTED_LOAD.reset(token)


def _wrap_resume(original: Callable) -> Callable:
    def resume(self: Runner, filename: str, *args: Any, **kwargs: Any) -> None:
        with trusted_checkpoint_loading():
            return original(self, filename, *args, **kwargs)

    resume.__doc__ = original.__doc__
    return resume


# --- 2. AMP on CPU ---------------------------------------------------------------------------

def _wrap_amp_init(original: Callable) -> Callable:
    def __init__(self: AmpOptimWrapper,  # noqa: N807  (replaces a method)
                 loss_scale: Any = 'dynamic', dtype: Any = None,
                 use_fsdp: bool = False, **kwargs: Any) -> None:
        if device.device_type() != 'cpu':
            return original(self, loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp,
                            **kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ExplainedValueError(
                f'optim_wrapper.dtype={dtype} cannot run on CPU: CPU autocast '
                'supports only bfloat16. Drop the dtype or set it to "bfloat16".')
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        # bf16 keeps fp32's exponent range, so gradients need no scaling; a disabled scaler keeps
        # AmpOptimWrapper's backward/step/state_dict code paths unchanged.
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = torch.bfloat16
        self.emulate_bf16_conv = not device.cpu_native_bf16()
        if self.emulate_bf16_conv:
            print_log('This CPU has no bf16 units: under bf16 autocast, convolutions run as '
                      'bf16-rounded fp32 (same numbers, fp32 speed).', logger='current')

    __init__.__doc__ = original.__doc__
    return __init__


class EmulatedBf16Convolution(TorchFunctionMode):
    """Under CPU bf16 autocast, compute convolutions as bf16-rounded fp32 (see fix 2).

    Inputs, weights and bias are rounded to bf16 (what autocast would hand a bf16 kernel), the
    convolution runs in fp32 with autocast off (the fast oneDNN path; bf16 kernels accumulate in
    fp32 too) and the output is rounded to bf16, as autocast's result would be.
    """

    _CONVOLUTIONS = frozenset({F.conv1d, F.conv2d, F.conv3d})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in self._CONVOLUTIONS or not torch.is_autocast_enabled('cpu') \
                or torch.get_autocast_dtype('cpu') != torch.bfloat16:
            return func(*args, **kwargs)

        def rounded(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.to(torch.bfloat16).float()
            return value

        with torch.autocast('cpu', enabled=False):
            out = func(*[rounded(a) for a in args], **{k: rounded(v) for k, v in kwargs.items()})
        return out.to(torch.bfloat16)


def _wrap_amp_context(original: Callable) -> Callable:
    @contextlib.contextmanager
    def optim_context(self: AmpOptimWrapper, model: torch.nn.Module) -> Iterator[None]:
        with original(self, model):
            if getattr(self, 'emulate_bf16_conv', False):
                with EmulatedBf16Convolution():
                    yield
            else:
                yield

    optim_context.__doc__ = original.__doc__
    return optim_context


# --- 3. gloo DDP on CPU ----------------------------------------------------------------------

def _wrap_init_dist_pytorch(original: Callable) -> Callable:
    def _init_dist_pytorch(backend: str, init_backend: str = 'torch', **kwargs: Any) -> None:
        if device.device_type() != 'cpu':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend != 'gloo':
            print_log(f'dist backend {backend!r} needs an accelerator; using gloo on CPU.',
                      logger='current')
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    return _init_dist_pytorch


def _wrap_ddp_init(original: Callable) -> Callable:
    def __init__(self: MMDistributedDataParallel,  # noqa: N807  (replaces a method)
                 module: torch.nn.Module,
                 detect_anomalous_params: bool = False, **kwargs: Any) -> None:
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    return __init__


# --- 4. no silent AMP on older Ascend SoCs --------------------------------------------------

def _build_optim_wrapper(model: torch.nn.Module, cfg: Any) -> OptimWrapper:
    """mmengine's ``build_optim_wrapper`` without the forced ``AmpOptimWrapper`` on SoC < 220."""
    optim_wrapper_cfg = copy.deepcopy(cfg)
    constructor_type = optim_wrapper_cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
    paramwise_cfg = optim_wrapper_cfg.pop('paramwise_cfg', None)
    wanted = optim_wrapper_cfg.get('type', 'OptimWrapper')
    if device.device_type() == 'npu' and not device.npu_full_precision() \
            and wanted != 'AmpOptimWrapper':
        print_log(f'This Ascend SoC runs fp32 work through fp16 internally; mmengine would '
                  f'silently replace optim_wrapper.type={wanted} with AmpOptimWrapper here. '
                  f'resnest_mm keeps {wanted} as configured: pass --amp (or add ApexAmpHook) '
                  'for mixed precision.', logger='current', level=logging.WARNING)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=constructor_type, optim_wrapper_cfg=optim_wrapper_cfg,
             paramwise_cfg=paramwise_cfg))
    return constructor(model)


# --- applying --------------------------------------------------------------------------------

def apply() -> None:
    """Apply every fix once (idempotent)."""
    global _applied
    if _applied:
        return
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    _patch(HistoryBuffer, '__getstate__', _history_buffer_getstate)
    _patch(HistoryBuffer, '__setstate__', _history_buffer_setstate)
    _patch(CheckpointLoader, '_schemes', {**CheckpointLoader._schemes, '': _load_from_local})
    _patch(Runner, 'resume', _wrap_resume(Runner.resume))
    _patch(AmpOptimWrapper, '__init__', _wrap_amp_init(AmpOptimWrapper.__init__))
    _patch(AmpOptimWrapper, 'optim_context', _wrap_amp_context(AmpOptimWrapper.optim_context))
    _patch(dist_utils, '_init_dist_pytorch',
           _wrap_init_dist_pytorch(dist_utils._init_dist_pytorch))
    _patch(MMDistributedDataParallel, '__init__',
           _wrap_ddp_init(MMDistributedDataParallel.__init__))
    _patch(runner_module, 'build_optim_wrapper', _build_optim_wrapper)
    _applied = True


@contextlib.contextmanager
def unpatched() -> Iterator[None]:
    """Run a block on the stack as released, without our fixes (for tests proving a fix matters).

    Inside the block ``torch.load``'s safe-globals allow-list is cleared too.
    """
    apply()
    saved_globals = torch.serialization.get_safe_globals()
    _set_all(_ORIGINALS)
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        _set_all(_PATCHES)
        torch.serialization.add_safe_globals(saved_globals)
