"""The device module: detection, override, backend and AMP dtype."""
import pytest
import torch

from resnest_mm import device


@pytest.fixture(autouse=True)
def _fresh_cache():
    device.device_type.cache_clear()
    yield
    device.device_type.cache_clear()


def test_detects_this_machine(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENV, raising=False)
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert device.device_type() == expected
    assert device.dist_backend() == {'cuda': 'nccl', 'cpu': 'gloo'}[expected]


def test_cpu_override_and_amp(monkeypatch):
    monkeypatch.setenv(device.DEVICE_ENV, 'cpu')
    assert device.device_type() == 'cpu'
    assert device.dist_backend() == 'gloo'
    assert device.amp_dtype() == torch.bfloat16
    assert not device.needs_loss_scaling()
    assert device.needs_loss_scaling(torch.float16)


def test_unknown_or_absent_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(device.DEVICE_ENV, 'tpu')
    with pytest.raises(RuntimeError, match='RESNEST_MM_DEVICE=.tpu. is not a device'):
        device.device_type()
    device.device_type.cache_clear()
    monkeypatch.setenv(device.DEVICE_ENV, 'npu')
    with pytest.raises(RuntimeError, match='does not have'):
        device.device_type()
