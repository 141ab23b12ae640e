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


def test_contract_simulated_npu_answers(simulated_npu):
    """Contract test (torch_npu stand-in): HCCL, fp16 AMP, torch_npu's fused SGD, SoC check."""
    assert device.dist_backend() == 'hccl'
    assert device.amp_dtype() == torch.float16 and device.amp_flavour() == 'fp16'
    assert device.sgd_implementation() == 'torch_npu'
    assert not device.npu_full_precision()  # SoC 104 (910A family)
    simulated_npu.SOC_VERSION['value'] = 223
    assert device.npu_full_precision()


def test_contract_apex_flavour_only_when_installed_and_asked(standin_apex):
    """Contract test (apex stand-in)."""
    assert device.amp_flavour(apex_requested=True) == 'apex'
    assert device.amp_flavour(apex_requested=False) in ('bf16', 'fp16')


def test_no_apex_here():
    assert device.apex() is None and device.torch_npu() is None
    assert device.amp_flavour(apex_requested=True) in ('bf16', 'fp16')
    assert device.sgd_implementation() == 'torch_fused'
