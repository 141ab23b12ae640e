"""Fixtures that put the apex / torch_npu stand-ins in place (contract tests only).

``standin_apex`` (:func:`apex_standin` as a context manager): the apex stand-in importable as
``apex``; torch's ``Module.zero_grad``, which it replaces process-wide as real apex does, is
restored afterwards.

``simulated_npu`` (:func:`npu_simulation`): this process believes it runs on an Ascend NPU (SoC
104, 8 devices): the torch_npu stand-in importable, ``torch.npu`` registered, an ``hccl``
process-group backend (gloo underneath), checkpoints loadable with ``map_location='npu'`` (onto
the stand-in NPU, the CPU), and what mmengine 0.10.7 computes at import on an NPU machine
(``mmengine.device.utils``: ``IS_NPU_AVAILABLE``, ``DEVICE``, ``npu_utils``;
``amp_optimizer_wrapper.GradScaler`` = ``torch.npu.amp.GradScaler``; torch_npu's optimizers in
mmengine's root ``OPTIMIZERS``), so mmengine's NPU branches run. Everything is undone after the
test. Not simulable in-process: ``torch.autocast('npu')`` and ``torch.device('npu')`` (they need
torch's privateuse1 backend renamed, which a process cannot undo); :func:`npu_process_env` gives
a subprocess the full registration instead.

Nothing here imports resnest_mm or mmengine at module level: the stand-ins import
``tests.helpers.standins.combined``, and in a simulated-NPU process that happens while mmengine
itself is being imported.
"""
import contextlib
import copy
import os
import sys
import types
from typing import Iterator

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
APEX_PATH = os.path.join(HERE, 'apex_path')
TORCH_NPU_PATH = os.path.join(HERE, 'torch_npu_path')
_BACKEND_TABLES = ('backend_list', 'backend_type_map', 'backend_capability',
                   'default_device_backend_map', '_plugins')


def _forget(package: str) -> None:
    from resnest_mm import device
    for name in list(sys.modules):
        if name.split('.')[0] == package:
            del sys.modules[name]
    for cached in (device.apex, device.torch_npu, device.device_type):
        getattr(cached, 'cache_clear', lambda: None)()  # device_type may be simulated


@contextlib.contextmanager
def apex_standin() -> Iterator[types.ModuleType]:
    """The apex stand-in importable as ``apex`` inside the block; yields ``apex.amp``."""
    _forget('apex')
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(APEX_PATH)
            # amp.initialize replaces torch.nn.Module.zero_grad for good; this puts torch's back
            mp.setattr(torch.nn.Module, 'zero_grad', torch.nn.Module.zero_grad)
            import apex.amp
            apex.amp.reset()
            yield apex.amp
    finally:
        _forget('apex')


@pytest.fixture
def standin_apex():
    """The apex stand-in importable as ``apex``; yields ``apex.amp`` with its call record."""
    with apex_standin() as amp:
        yield amp


def _register_like_torch_npu(mp: pytest.MonkeyPatch, torch_npu) -> None:
    """torch_npu's import-time registration, minus the privateuse1 rename, reversibly."""
    from torch.distributed import Backend
    mp.setattr(torch, 'npu', torch_npu.npu, raising=False)
    for name, module in torch_npu._registry.device_modules().items():
        mp.setitem(sys.modules, name, module)
    for table in _BACKEND_TABLES:  # register_backend mutates these: give it copies
        mp.setattr(Backend, table, copy.copy(getattr(Backend, table)))
    mp.setattr(Backend, torch_npu._registry.HCCL.upper(), torch_npu._registry.HCCL,
               raising=False)
    torch_npu._registry.register_hccl()
    mp.setattr(torch.serialization, '_package_registry',
               list(torch.serialization._package_registry))  # register_package appends to it
    torch_npu._registry.register_npu_deserializer()


def _mmengine_as_on_an_npu(mp: pytest.MonkeyPatch, torch_npu) -> None:
    """What mmengine 0.10.7 computes at import when torch_npu and an NPU are present."""
    from mmengine.device import utils as device_utils
    from mmengine.optim.optimizer import amp_optimizer_wrapper, builder
    from mmengine.registry import OPTIMIZERS
    mp.setattr(device_utils, 'IS_NPU_AVAILABLE', True)
    mp.setattr(device_utils, 'DEVICE', 'npu')
    mp.setattr(device_utils, 'npu_utils', torch_npu.npu.utils, raising=False)
    mp.setattr(amp_optimizer_wrapper, 'GradScaler', torch_npu.npu.amp.GradScaler)
    mp.setattr(OPTIMIZERS, '_module_dict', dict(OPTIMIZERS._module_dict))
    builder.register_torch_npu_optimizers()


@contextlib.contextmanager
def npu_simulation(soc_version: int = 104) -> Iterator[types.ModuleType]:
    """This process believes it runs on an Ascend NPU inside the block; yields ``torch_npu``.

    Skips the test on torch < 2.3: the stand-in models today's torch_npu, whose GradScaler is
    ``torch.amp.GradScaler`` (torch 2.3 and later)."""
    from resnest_mm import compat, device
    if not compat.torch_at_least((2, 3)):
        pytest.skip(f'the torch_npu stand-in needs torch.amp.GradScaler (torch 2.3+), not '
                    f'torch {torch.__version__}')
    _forget('torch_npu')
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(TORCH_NPU_PATH)
            import torch_npu
            torch_npu.SOC_VERSION['value'] = soc_version
            torch_npu.npu.DEVICE_COUNT['value'] = 8
            torch_npu.npu.reset()
            _register_like_torch_npu(mp, torch_npu)
            _mmengine_as_on_an_npu(mp, torch_npu)
            mp.setattr(device, 'device_type', lambda: 'npu')  # whether or not it asks mmengine
            yield torch_npu
    finally:
        _forget('torch_npu')


@pytest.fixture
def simulated_npu():
    """This process believes it runs on an Ascend NPU (the torch_npu stand-in, SoC 104)."""
    with npu_simulation() as torch_npu:
        yield torch_npu


def npu_process_env(apex: bool = False) -> dict:
    """The environment of a subprocess that runs as on an Ascend NPU machine: importing torch_npu
    (mmengine does, on import) registers ``torch.npu``, ``hccl`` and the ``npu`` device type for
    good, so mmengine's import-time NPU choices and ``torch.autocast('npu')`` are the real ones.
    ``apex``: the apex stand-in importable too."""
    paths = [TORCH_NPU_PATH] + ([APEX_PATH] if apex else []) + [ROOT]
    env = dict(os.environ, STANDIN_TORCH_NPU_PROCESS='1', CUDA_VISIBLE_DEVICES='')
    env['PYTHONPATH'] = os.pathsep.join(paths + [p for p in [os.environ.get('PYTHONPATH')] if p])
    return env
