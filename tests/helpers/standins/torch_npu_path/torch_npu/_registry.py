"""How the stand-in joins torch, as torch_npu does at import (``torch_npu/_init/registry/``).

torch_npu renames torch's privateuse1 backend to ``npu``, registers ``torch_npu.npu`` as the
``torch.npu`` device module (``backend.py``) and registers the ``hccl`` process-group backend
(``distributed.py``: ``Backend.register_backend('hccl', ..., extended_api=True,
devices=['npu'])``). The stand-in's hccl is torch's gloo underneath, for the stand-in NPU's
tensors (CPU), so a simulated-NPU process really initialises and uses an hccl group.

Checkpoints load "onto the NPU" (``torch.load(map_location='npu')``, what mmengine's
``Runner.resume`` asks on an NPU machine, and a storage tagged ``npu``): real torch_npu restores
such storages through torch's privateuse1 deserializer onto the device; the stand-in's NPU memory
is the CPU, so :func:`npu_deserialize` (registered with ``torch.serialization.register_package``,
before torch's own) checks the device index as torch_npu does and leaves the storage where it is.

The rename cannot be undone in a process, so only :func:`install_in_this_process` (a
subprocess started with ``STANDIN_TORCH_NPU_PROCESS=1``) does it; the ``simulated_npu`` fixture
registers the rest reversibly (tests/helpers/standins/__init__.py).
"""
from __future__ import annotations

import re
import sys

import torch
import torch.distributed as dist

HCCL = 'hccl'
NPU_PACKAGE_PRIORITY = 15  # before torch's privateuse1 entry (23), after the CPU's (10)


def _hccl_on_gloo(dist_backend_opts, pg_options):
    return dist.ProcessGroupGloo(dist_backend_opts.store, dist_backend_opts.group_rank,
                                 dist_backend_opts.group_size, dist_backend_opts.timeout)


def register_hccl() -> None:
    """Register the stand-in ``hccl`` backend (undo: the fixture restores Backend's tables)."""
    dist.Backend.register_backend(HCCL, _hccl_on_gloo, extended_api=True, devices=['cpu'])


def npu_deserialize(storage, location: str):
    """Restore a storage saved on, or mapped to, ``npu[:N]``: on the stand-in NPU (the CPU),
    counted in ``npu.STATE['storages_loaded']``.

    Raises:
        RuntimeError: a device index this node does not have (torch_npu's check).
    """
    if not re.fullmatch(r'npu(:\d+)?', location):
        return None
    from . import npu
    npu._index(location)  # "Invalid device ordinal" as torch_npu
    npu.STATE['storages_loaded'] += 1
    return storage


def register_npu_deserializer() -> None:
    """Register :func:`npu_deserialize` (undo: the fixture restores torch's package registry)."""
    torch.serialization.register_package(NPU_PACKAGE_PRIORITY, lambda storage: None,
                                         npu_deserialize)


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
    register_npu_deserializer()
