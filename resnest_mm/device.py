"""The one place that knows about NPU, CUDA and CPU.

Everything else in resnest_mm asks this module which device it runs on, which process-group
backend and which mixed-precision dtype to use. ``torch_npu`` and ``apex`` are imported lazily and
guarded: ``torch_npu`` installed without the CANN toolkit breaks ``import torch`` itself, so it is
only touched when it is installed and an NPU is asked about.

The device can be forced with the environment variable ``RESNEST_MM_DEVICE`` (``npu``, ``cuda`` or
``cpu``); it steers resnest_mm's choices (backend, AMP, SGD). To keep a present GPU away from
mmengine and torch as well, also set ``CUDA_VISIBLE_DEVICES=""``.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Optional

import torch

from .utils.errors import ExplainedRuntimeError

DEVICE_ENV = 'RESNEST_MM_DEVICE'
DEVICE_TYPES = ('npu', 'cuda', 'cpu')
_BACKENDS = {'npu': 'hccl', 'cuda': 'nccl', 'cpu': 'gloo'}
_TORCH_VERSION = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2])


def _import_optional(name: str) -> Optional[ModuleType]:
    """Import ``name`` if it is installed, else return None (never raises ImportError)."""
    if importlib.util.find_spec(name.split('.')[0]) is None:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@functools.cache
def torch_npu() -> Optional[ModuleType]:
    """The ``torch_npu`` module when installed and importable, else None."""
    return _import_optional('torch_npu')


@functools.cache
def apex() -> Optional[ModuleType]:
    """The ``apex`` package (Ascend's or NVIDIA's) with its ``amp`` module, else None."""
    module = _import_optional('apex')
    if module is None or _import_optional('apex.amp') is None:
        return None
    return module


def npu_available() -> bool:
    """Whether an Ascend NPU is usable (torch_npu installed and a device present)."""
    if torch_npu() is None:
        return False
    npu = getattr(torch, 'npu', None)
    return bool(npu is not None and npu.is_available())


@functools.cache
def device_type() -> str:
    """The device this process trains on: ``npu``, then ``cuda``, then ``cpu``.

    ``RESNEST_MM_DEVICE`` overrides the choice.

    Raises:
        RuntimeError: if the requested device is unknown or not present.
    """
    wanted = os.environ.get(DEVICE_ENV, '').strip().lower()
    if wanted:
        if wanted not in DEVICE_TYPES:
            raise ExplainedRuntimeError(
                f'{DEVICE_ENV}={wanted!r} is not a device resnest_mm knows; '
                f'use one of {", ".join(DEVICE_TYPES)} or unset it.')
        present = {'npu': npu_available, 'cuda': torch.cuda.is_available,
                   'cpu': lambda: True}[wanted]()
        if not present:
            raise ExplainedRuntimeError(
                f'{DEVICE_ENV}={wanted} asks for a device this machine does not have '
                f'(torch {torch.__version__}); unset it to use what is present.')
        return wanted
    if npu_available():
        return 'npu'
    if torch.cuda.is_available():
        return 'cuda'
    return 'cpu'


def npu_full_precision() -> bool:
    """Whether the NPU computes in fp32 natively (SoC 910B and later: version >= 220).

    Older SoCs (910A, version < 220) default to converting fp32 work to fp16; mmengine then
    forces AMP, which resnest_mm does not do silently (see :mod:`resnest_mm.compat`).
    """
    if device_type() != 'npu':
        return True
    return torch_npu().npu.get_soc_version() >= 220


def device_count() -> int:
    """Devices of this type on this node (CPU: the number of cores, which bounds nothing)."""
    kind = device_type()
    if kind == 'npu':
        return torch.npu.device_count()
    if kind == 'cuda':
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_processes_per_node() -> None:
    """Refuse more processes on this node than it has devices (one process drives one device).

    ``LOCAL_WORLD_SIZE`` is set by torchrun (``tools/dist_train.sh``); CPU processes share the
    cores, so any number is allowed there.

    Raises:
        RuntimeError: naming both numbers and the command to use.
    """
    local = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    kind = device_type()
    if kind == 'cpu' or local <= 1:
        return
    count = device_count()
    if local > count:
        raise ExplainedRuntimeError(
            f'{local} processes were started on this node, but it has {count} {kind.upper()} '
            f'device(s), and each process needs its own: start at most {count} (bash '
            f'tools/dist_train.sh CONFIG {count}), or make more devices visible.')


def profiler_hook(iters: int, out_dir: str) -> dict:
    """The profiler hook config for this device, profiling the first ``iters`` iterations.

    NPU: MMEngine's ``NPUProfilerHook`` (CANN profiling into ``out_dir/cann_profiling``), what
    the seed's ``--prof`` did on Ascend. CUDA/CPU: MMEngine's ``ProfilerHook`` (PyTorch's
    profiler): a table of the slowest operators on stdout and a Chrome trace in
    ``out_dir/trace.json``.
    """
    kind = device_type()
    if kind == 'npu':
        return dict(type='NPUProfilerHook', begin=0, end=iters,
                    result_path=os.path.join(out_dir, 'cann_profiling'),
                    exit_after_profiling=False)
    sort_by = 'self_cuda_time_total' if kind == 'cuda' else 'self_cpu_time_total'
    return dict(type='ProfilerHook', by_epoch=False, profile_times=iters,
                activity_with_cuda=kind == 'cuda',
                on_trace_ready=dict(type='log_trace', sort_by=sort_by, row_limit=20),
                json_trace_path=os.path.join(out_dir, 'trace.json'))


def synchronize() -> None:
    """Wait for the accelerator's queued work (timing); nothing to wait for on CPU."""
    kind = device_type()
    if kind == 'cuda':
        torch.cuda.synchronize()
    elif kind == 'npu':
        torch.npu.synchronize()


def rng_state() -> Optional[torch.Tensor]:
    """This process's accelerator RNG state (its current device), None on CPU or before use."""
    kind = device_type()
    if kind == 'cuda' and torch.cuda.is_initialized():
        return torch.cuda.get_rng_state()
    if kind == 'npu':
        return torch.npu.get_rng_state()
    return None


def set_rng_state(state: torch.Tensor) -> None:
    """Restore :func:`rng_state`'s result (moved to the CPU: the setters take CPU tensors)."""
    kind = device_type()
    if kind == 'cuda':
        torch.cuda.set_rng_state(state.cpu())
    elif kind == 'npu':
        torch.npu.set_rng_state(state.cpu())


def dist_backend() -> str:
    """The process-group backend for this device: hccl on NPU, nccl on CUDA, gloo on CPU."""
    return _BACKENDS[device_type()]


def amp_dtype() -> torch.dtype:
    """The autocast dtype of native AMP on this device.

    fp16 (with a loss scaler) on CUDA and NPU, the formats their matrix units are fastest in;
    bf16 on CPU, the only dtype CPU autocast supports, which needs no loss scaling.
    """
    return torch.bfloat16 if device_type() == 'cpu' else torch.float16


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (AVX512-BF16, AMX or AVX-NE-CONVERT).

    Without it PyTorch runs bf16 convolutions through a reference kernel tens of times slower
    than fp32 (measured 10x for one conv and 38x for a ResNeSt-50 step on an AVX2-only CPU).
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def needs_loss_scaling(dtype: Optional[torch.dtype] = None) -> bool:
    """Whether AMP in ``dtype`` (default: :func:`amp_dtype`) needs a gradient scaler."""
    return (dtype or amp_dtype()) == torch.float16


def amp_flavour(apex_requested: bool = False) -> str:
    """Which mixed precision runs here.

    ``'apex'`` when apex AMP is asked for (``ApexAmpHook``) and apex is installed; otherwise the
    device's native AMP: ``'fp16'`` (autocast + dynamic loss scaling) on CUDA and NPU, ``'bf16'``
    (autocast, no scaling) on CPU.
    """
    if apex_requested and apex() is not None:
        return 'apex'
    return 'bf16' if amp_dtype() == torch.bfloat16 else 'fp16'


def sgd_implementation(apex_amp: bool = False) -> str:
    """The fused SGD that exists here, fastest first.

    ``'apex'`` (``apex.optimizers.NpuFusedSGD``: NPU with apex AMP active; it refuses to step
    without it), ``'torch_npu'`` (``torch_npu.optim.NpuFusedSGD``), ``'torch_fused'``
    (``torch.optim.SGD(fused=True)``: CUDA, and CPU since torch 2.4) or ``'torch_foreach'``.
    """
    kind = device_type()
    if kind == 'npu':
        optimizers = _import_optional('apex.optimizers') if apex_amp and apex() else None
        if optimizers is not None and hasattr(optimizers, 'NpuFusedSGD'):
            return 'apex'
        return 'torch_npu'
    if kind == 'cuda' or _TORCH_VERSION >= (2, 4):
        return 'torch_fused'
    return 'torch_foreach'
