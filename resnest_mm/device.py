"""The device policy of resnest_mm: what mmengine does not decide for NPU, CUDA and CPU.

Which device a process runs on is mmengine's answer (``mmengine.device.get_device()``: NPU,
then CUDA, then CPU), the same answer the Runner uses to place the model, so resnest_mm and
mmengine never disagree. To train on the CPU of a machine with a GPU, hide the GPU from both:
``CUDA_VISIBLE_DEVICES=""`` (mmengine's own advice). This module keeps only the policy mmengine
lacks: the process-group backend of each device, how a process selects its device, the
mixed-precision dtype, which fused SGD exists, whether apex and channels_last can be used, and
the accelerator calls (synchronise, RNG state) that differ between ``torch.cuda`` and
``torch.npu``.

``torch_npu`` is never imported by resnest_mm itself unless an NPU is asked about:
``torch_npu`` installed without the CANN toolkit breaks ``import torch``. ``apex``, where
installed, is imported when a run asks for apex AMP or builds its DDP wrapper (which must come
after apex's ``amp.initialize``). Where torch_npu
*is* installed, torch >= 2.5 loads it through its backend entry point and ``mmengine.device``
imports it on import, so there it is loaded before resnest_mm asks anything.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Optional

import torch
from mmengine import device as mm_device

from . import compat
from .utils.errors import ExplainedRuntimeError

# Process-group backend per device; devices mmengine knows but resnest_mm has no policy for
# (mlu, mps, musa) get gloo, which runs anywhere.
_BACKENDS = {'npu': 'hccl', 'cuda': 'nccl', 'cpu': 'gloo'}


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
    """The ``apex`` package with its ``amp`` module (Ascend's apex), else None.

    NVIDIA apex removed ``apex.amp`` in 2025 (NVIDIA/apex PR #1896), so on CUDA this is None
    with any current apex, and mixed precision is torch's own.
    """
    module = _import_optional('apex')
    if module is None or _import_optional('apex.amp') is None:
        return None
    return module


def device_type() -> str:
    """The device this process trains on, as mmengine places the model: ``npu``, ``cuda``,
    ``cpu`` (or another device mmengine supports, such as ``mps``)."""
    return mm_device.get_device()


def npu_full_precision() -> bool:
    """Whether the NPU computes fp32 work in fp32 (SoC 910B and later: version >= 220).

    True off the NPU. On older SoCs (910A) CANN's default precision mode
    (``allow_fp32_to_fp16``) runs fp32 convolutions and matrix products in fp16 internally,
    without loss scaling; :mod:`resnest_mm.engine.amp_policy` says so when a run has no AMP.
    """
    if device_type() != 'npu':
        return True
    return mm_device.is_npu_support_full_precision()


def device_count() -> int:
    """Devices of this type on this node (CPU: the number of cores, which bounds nothing)."""
    kind = device_type()
    if kind == 'npu':
        return torch.npu.device_count()
    if kind == 'cuda':
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def set_device(local_rank: int) -> None:
    """Make ``local_rank``'s accelerator this process's current device (nothing on CPU).

    mmengine's slurm and mpi initialisers call ``torch.cuda.set_device`` whatever the device;
    this is what each device needs instead.
    """
    kind = device_type()
    if kind == 'cuda':
        torch.cuda.set_device(local_rank)
    elif kind == 'npu':
        torch.npu.set_device(local_rank)


def check_processes_per_node() -> None:
    """Refuse more processes on this node than it has devices (one process drives one device).

    ``LOCAL_WORLD_SIZE`` is set by torchrun (``tools/dist_train.sh``); CPU processes share the
    cores, so any number is allowed there.

    Raises:
        RuntimeError: naming both numbers and the command to use.
    """
    local = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    kind = device_type()
    if kind not in ('npu', 'cuda') or local <= 1:
        return
    count = device_count()
    if local > count:
        raise ExplainedRuntimeError(
            f'{local} processes were started on this node, but it has {count} {kind.upper()} '
            f'device(s), and each process needs its own: start at most {count} (bash '
            f'tools/dist_train.sh CONFIG {count}), or make more devices visible.')


def profiler_hook(iters: int, out_dir: str) -> dict:
    """The profiler hook config for this device, profiling the first ``iters`` iterations.

    NPU: resnest_mm's ``TorchNpuProfilerHook`` (torch_npu's profiler, CANN timings, into
    ``out_dir/npu_profiling``), what the seed's ``--prof`` did on Ascend. CUDA/CPU: MMEngine's
    ``ProfilerHook`` (PyTorch's profiler): a table of the slowest operators on stdout and a
    Chrome trace in ``out_dir/trace.json``.
    """
    kind = device_type()
    if kind == 'npu':
        return dict(type='resnest_mm.TorchNpuProfilerHook', iters=iters,
                    out_dir=os.path.join(out_dir, 'npu_profiling'))
    sort_by = 'self_cuda_time_total' if kind == 'cuda' else 'self_cpu_time_total'
    return dict(type='ProfilerHook', by_epoch=False, profile_times=iters,
                activity_with_cuda=kind == 'cuda',
                on_trace_ready=dict(type='log_trace', sort_by=sort_by, row_limit=20),
                json_trace_path=os.path.join(out_dir, 'trace.json'))


def supports_channels_last() -> bool:
    """Whether the device runs NHWC tensors: not the NPU, whose ``Tensor.to`` takes only the
    contiguous and preserve formats and whose fused optimizers combine contiguous tensors."""
    return device_type() != 'npu'


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
    """The process-group backend for this device: hccl on NPU, nccl on CUDA, gloo elsewhere."""
    return _BACKENDS.get(device_type(), 'gloo')


# Backends each device can run besides its own.
_ALSO_RUNS = {'npu': ('gloo', ), 'cuda': ('gloo', 'mpi'), 'cpu': ('mpi', )}


def backend_for(wanted: Optional[str]) -> str:
    """The backend to use when the config asks for ``wanted`` (None: the device's own): the
    configured one where this device can run it (gloo on a GPU), else the device's own (the
    OpenMMLab configs' nccl on a CPU becomes gloo)."""
    own = dist_backend()
    if wanted is None or wanted == own or wanted in _ALSO_RUNS.get(device_type(), ()):
        return wanted or own
    return own


def takes_device_ids() -> bool:
    """Whether DDP is given the process's device index here (GPU, NPU), not on the CPU, whose
    modules DDP refuses device ids for."""
    return device_type() in ('cuda', 'npu')


def amp_dtype(kind: Optional[str] = None) -> torch.dtype:
    """The autocast dtype of native AMP on device ``kind`` (default: this process's device).

    fp16 (with a loss scaler) on CUDA and NPU, the formats their matrix units are fastest in and
    the seed's apex O1; bf16 on CPU, the only dtype CPU autocast computes quickly, which needs
    no loss scaling.
    """
    return torch.bfloat16 if (kind or device_type()) == 'cpu' else torch.float16


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (AVX512-BF16, AMX or AVX-NE-CONVERT).

    Without it PyTorch runs bf16 convolutions through a reference kernel tens of times slower
    than fp32 (measured 10x for one conv and 38x for a ResNeSt-50 step on an AVX2-only CPU).
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def cpu_uint8_resize() -> bool:
    """Whether this CPU resizes uint8 images with PyTorch's vectorised uint8 antialiasing kernel
    (AVX2 or AVX-512), the one torchvision 0.17+ takes there; elsewhere torchvision resizes in
    float and rounds."""
    return torch.backends.cpu.get_cpu_capability() in ('AVX2', 'AVX512')


def needs_loss_scaling(dtype: Optional[torch.dtype] = None) -> bool:
    """Whether AMP in ``dtype`` (default: :func:`amp_dtype`) needs a gradient scaler."""
    return (dtype or amp_dtype()) == torch.float16


def amp_wrapper_type(kind: Optional[str] = None) -> str:
    """The optimizer wrapper of native AMP on device ``kind`` (default: this process's device):
    mmengine's ``AmpOptimWrapper`` on an accelerator, resnest_mm's ``CpuAmpOptimWrapper`` on
    CPU (mmengine's refuses the CPU)."""
    return 'CpuAmpOptimWrapper' if (kind or device_type()) == 'cpu' else 'AmpOptimWrapper'


def sgd_implementation(apex_amp: bool = False) -> str:
    """The fused SGD that exists here, fastest first.

    ``'apex'`` (``apex.optimizers.NpuFusedSGD``: NPU with apex AMP active; it refuses to step
    without it), ``'torch_npu'`` (``torch_npu.optim.NpuFusedSGD``), ``'torch_fused'``
    (``torch.optim.SGD(fused=True)``: CUDA since torch 2.3, CPU since 2.4) or ``'torch_foreach'``.
    """
    kind = device_type()
    if kind == 'npu':
        optimizers = _import_optional('apex.optimizers') if apex_amp and apex() else None
        if optimizers is not None and hasattr(optimizers, 'NpuFusedSGD'):
            return 'apex'
        return 'torch_npu'
    if compat.fused_sgd(kind):
        return 'torch_fused'
    return 'torch_foreach'


def jpeg_decode_device(model_device: torch.device) -> torch.device:
    """Where ``torchvision.io.decode_jpeg`` decodes a batch for a model on ``model_device``.

    nvJPEG on a GPU; DVPP on an NPU when Ascend's ``torchvision_npu`` is installed (importing it
    registers the NPU decoder with torchvision); otherwise the CPU of the main process (the
    decode still leaves the loader workers, but costs the training process's CPU time).
    """
    if model_device.type == 'cuda':
        return model_device
    if model_device.type == 'npu' and _import_optional('torchvision_npu') is not None:
        return model_device
    return torch.device('cpu')
