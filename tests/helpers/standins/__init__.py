"""Fixtures that put the apex / torch_npu stand-ins on the import path (contract tests only)."""
import os
import sys

import pytest

from resnest_mm import device

HERE = os.path.dirname(os.path.abspath(__file__))


def _forget(package: str) -> None:
    for name in list(sys.modules):
        if name.split('.')[0] == package:
            del sys.modules[name]
    for cached in (device.apex, device.torch_npu, device.device_type):
        getattr(cached, 'cache_clear', lambda: None)()  # device_type may be simulated


@pytest.fixture
def standin_apex(monkeypatch):
    """The apex stand-in importable as ``apex``; yields ``apex.amp`` with its call record."""
    _forget('apex')
    monkeypatch.syspath_prepend(os.path.join(HERE, 'apex_path'))
    import apex.amp
    apex.amp.reset()
    yield apex.amp
    monkeypatch.undo()
    _forget('apex')


@pytest.fixture
def simulated_npu(monkeypatch):
    """This process believes it runs on an Ascend NPU (the torch_npu stand-in, SoC 104)."""
    _forget('torch_npu')
    monkeypatch.syspath_prepend(os.path.join(HERE, 'torch_npu_path'))
    import torch_npu
    torch_npu.SOC_VERSION['value'] = 104
    monkeypatch.setattr(device, 'device_type', lambda: 'npu')
    yield torch_npu
    monkeypatch.undo()
    _forget('torch_npu')
