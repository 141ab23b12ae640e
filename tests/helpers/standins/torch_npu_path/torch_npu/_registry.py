"""How the stand-in joins torch, as torch_npu does at import (``torch_npu/_init/registry/``).

torch_npu renames torch's privateuse1 backend to ``npu``, registers ``torch_npu.npu`` as the
``torch.npu`` device module (``backend.py``) and registers the ``hccl`` process-group backend
(``distributed.py``: ``Backend.register_backend('hccl', ..., extended_api=True,
devices=['npu'])``). The stand-in's hccl is torch's gloo underneath, for the stand-in NPU's
tensors (CPU), so a simulated-NPU process really initialises and uses an hccl group.

The rename cannot be undone in a process, so only :func:`install_in_this_process` (a
subprocess started with ``STANDIN_TORCH_NPU_PROCESS=1``) does it; the ``simulated_npu`` fixture
registers the rest reversibly (tests/helpers/standins/__init__.py).
"""
from __future__ import annotations

import sys

import torch
import torch.distributed as dist

HCCL = 'hccl'


def _hccl_on_gloo(dist_backend_opts, pg_options):
    return dist.ProcessGroupGloo(dist_backend_opts.store, dist_backend_opts.group_rank,
                                 dist_backend_opts.group_size, dist_backend_opts.timeout)


def register_hccl() -> None:
    """Register the stand-in ``hccl`` backend (undo: the fixture restores Backend's tables)."""
    dist.Backend.register_backend(HCCL, _hccl_on_gloo, extended_api=True, devices=['cpu'])


def device_modules() -> dict:
    """The ``sys.modules`` entries torch_npu's registration makes importable as ``torch.npu``."""
    from . import npu
    return {'torch.npu': npu, 'torch.npu.amp': npu.amp, 'torch.npu.utils': npu.utils}


def install_in_this_process() -> None:
    """Everything torch_npu's import does to torch, for good (subprocesses only)."""
    from . import npu
    torch.utils.rename_privateuse1_backend('npu')
    torch._register_device_module('npu', npu)
    sys.modules.update(device_modules())
    register_hccl()
