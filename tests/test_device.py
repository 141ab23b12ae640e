"""The device policy: the device is mmengine's answer; backend, AMP dtype and SGD are ours."""
import pytest
import torch
from mmengine import device as mm_device

from resnest_mm import compat, device

pytestmark = pytest.mark.compat  # must hold on every supported torch


def test_detects_this_machine():
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert device.device_type() == expected
    assert device.dist_backend() == {'cuda': 'nccl', 'cpu': 'gloo'}[expected]


def test_one_device_truth_with_mmengine(monkeypatch):
    """What the Runner places the model on and what resnest_mm's policy asks about agree."""
    assert device.device_type() == mm_device.get_device()
    monkeypatch.setattr(mm_device.utils, 'IS_NPU_AVAILABLE', True)
    monkeypatch.setattr(mm_device.utils, 'DEVICE', 'npu')  # mmengine fixes it at import
    assert mm_device.get_device() == device.device_type() == 'npu'
    assert device.dist_backend() == 'hccl' and device.amp_wrapper_type() == 'AmpOptimWrapper'
    assert not device.supports_channels_last()


def test_cpu_policy():
    if device.device_type() != 'cpu':
        return
    assert device.dist_backend() == 'gloo'
    assert device.amp_dtype() == torch.bfloat16
    assert device.amp_wrapper_type() == 'CpuAmpOptimWrapper'
    assert not device.needs_loss_scaling()
    assert device.needs_loss_scaling(torch.float16)


def test_contract_simulated_npu_answers(simulated_npu):
    """Contract test (torch_npu stand-in): HCCL, fp16 AMP, torch_npu's fused SGD, SoC check."""
    assert device.dist_backend() == 'hccl'
    assert device.amp_dtype() == torch.float16
    assert device.amp_wrapper_type() == 'AmpOptimWrapper'
    assert device.sgd_implementation() == 'torch_npu'
    assert not device.npu_full_precision()  # SoC 104 (910A family)
    simulated_npu.SOC_VERSION['value'] = 223
    assert device.npu_full_precision()


def test_contract_apex_found_when_installed(standin_apex):
    """Contract test (apex stand-in)."""
    assert device.apex() is not None


def test_no_apex_here():
    assert device.apex() is None and device.torch_npu() is None
    fused = compat.fused_sgd(device.device_type())
    assert device.sgd_implementation() == ('torch_fused' if fused else 'torch_foreach')


def test_backend_for_a_configured_one(monkeypatch):
    from mmengine.device import utils
    assert device.backend_for(None) == device.dist_backend()
    if device.device_type() == 'cpu':
        assert device.backend_for('nccl') == 'gloo'  # the OpenMMLab configs' nccl, on a CPU
        assert device.backend_for('mpi') == 'mpi' and not device.takes_device_ids()
    monkeypatch.setattr(utils, 'IS_NPU_AVAILABLE', True)
    monkeypatch.setattr(utils, 'DEVICE', 'npu')
    assert device.backend_for('nccl') == 'hccl' and device.backend_for('gloo') == 'gloo'
    assert device.takes_device_ids()
