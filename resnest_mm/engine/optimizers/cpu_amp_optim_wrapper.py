"""``CpuAmpOptimWrapper``: mixed precision on the CPU (bf16 autocast), where mmengine has none."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch.overrides import TorchFunctionMode

from ... import compat, device
from ...registry import OPTIM_WRAPPERS
from ...utils.errors import ExplainedValueError


class EmulatedBf16Convolution(TorchFunctionMode):
    """Under CPU bf16 autocast, compute convolutions as bf16-rounded fp32.

    Inputs, weights and bias are rounded to bf16 (what autocast would hand a bf16 kernel), the
    convolution runs in fp32 with autocast off (the fast oneDNN path; bf16 kernels accumulate in
    fp32 too) and the output is rounded to bf16, as autocast's result would be: the numbers of a
    bf16 convolution at fp32 speed, on CPUs whose bf16 convolutions would take PyTorch's
    reference kernel (tens of times slower).
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


@OPTIM_WRAPPERS.register_module()
class CpuAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for the CPU: bf16 autocast, no loss scaling.

    mmengine's ``AmpOptimWrapper`` asserts a GPU, NPU, MLU or MUSA is present
    (``optim/optimizer/amp_optimizer_wrapper.py``; open-mmlab/mmpretrain#1556), so mmengine has
    no mixed precision on the CPU. On CPU, AMP means bf16 autocast (the dtype CPU autocast
    computes quickly), and bf16 keeps fp32's exponent range, so gradients need no scaling: the
    loss scaler is a disabled ``torch.amp.GradScaler``, which keeps ``AmpOptimWrapper``'s
    backward, step and ``state_dict`` paths as they are. ``--amp`` selects this wrapper on CPU.

    A numerics/speed choice, made explicit: on CPUs without bf16 units (no AVX512-BF16, AMX or
    AVX-NE-CONVERT) PyTorch's bf16 convolutions run a reference kernel (38x slower for a
    ResNeSt-50 step on an AVX2 CPU), so there convolutions get bf16-rounded operands and outputs
    but run on the fp32 kernels (:class:`EmulatedBf16Convolution`): bf16 arithmetic with fp32
    accumulation, as a bf16 kernel computes it, at fp32 speed. ``emulate_bf16_conv`` forces the
    choice either way.

    Args:
        dtype (str | torch.dtype): Only ``'bfloat16'`` (the default): CPU autocast's fast dtype.
        emulate_bf16_conv (bool, optional): Emulate bf16 convolutions on fp32 kernels; None:
            when the CPU has no bf16 units. Defaults to None.
        loss_scale: Accepted for config compatibility with ``AmpOptimWrapper``; unused (bf16
            needs no loss scaling).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``accumulative_counts``,
            ``clip_grad``).
    """

    def __init__(self, dtype: Any = 'bfloat16', emulate_bf16_conv: Optional[bool] = None,
                 loss_scale: Any = 'dynamic', **kwargs: Any) -> None:
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ExplainedValueError(
                f'optim_wrapper.dtype={dtype} cannot run on CPU: CPU autocast is fast only in '
                'bfloat16. Drop the dtype or set it to "bfloat16".')
        # AmpOptimWrapper.__init__ asserts an accelerator: set up its state here instead.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = compat.grad_scaler('cpu', enabled=False)
        self.cast_dtype = torch.bfloat16
        self.use_fsdp = False
        self.emulate_bf16_conv = (not device.cpu_native_bf16() if emulate_bf16_conv is None
                                  else bool(emulate_bf16_conv))
        if self.emulate_bf16_conv:
            print_log('This CPU has no bf16 units: under bf16 autocast, convolutions run as '
                      'bf16-rounded fp32 (same numbers, fp32 speed).', logger='current')

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        """mmengine's AMP context (gradient accumulation, bf16 autocast on the CPU), with the
        bf16 convolution emulation where chosen."""
        with super().optim_context(model):
            if self.emulate_bf16_conv:
                with EmulatedBf16Convolution():
                    yield
            else:
                yield
