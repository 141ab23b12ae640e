"""STAND-IN for ``torch_npu.npu.amp`` (``torch.npu.amp``): ``GradScaler`` and ``autocast``.

``GradScaler`` is torch's on the stand-in NPU's tensors (CPU), with torch_npu's signature
(``dynamic``; torch_npu ``torch_npu/npu/amp/grad_scaler.py``): dynamic loss scaling, a skipped
``optimizer.step()`` on inf/NaN gradients, back-off and growth are torch's own code.
``autocast`` is torch_npu's: ``torch.autocast('npu', ...)`` (``npu/amp/autocast_mode.py``); it
works only in a process where the stand-in renamed torch's privateuse1 backend to ``npu``
(``install_in_this_process``), and there it casts nothing, as no tensor is on that device.
"""
from __future__ import annotations

from typing import Optional

import torch

from tests.helpers.standins.combined import STANDIN_NPU


class GradScaler(torch.amp.GradScaler):
    """torch.npu.amp.GradScaler: torch's GradScaler on the stand-in NPU (CPU tensors)."""

    def __init__(self, init_scale: float = 2.**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 dynamic: bool = True, enabled: bool = True) -> None:
        super().__init__(STANDIN_NPU, init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)
        self._dynamic = dynamic

    def update(self, new_scale: Optional[float] = None) -> None:
        if new_scale is None and not self._dynamic and self.is_enabled():
            new_scale = self.get_scale()  # torch_npu: no scale update unless dynamic
        super().update(new_scale)


class autocast(torch.amp.autocast_mode.autocast):  # noqa: N801  (torch_npu's name)
    def __init__(self, enabled: bool = True, dtype: torch.dtype = torch.float16,
                 cache_enabled: bool = True) -> None:
        super().__init__('npu', enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)
