"""Each compat fix works, and the stack as released fails without it."""
import logging
import os
import pickle
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import load_checkpoint

from resnest_mm import compat
from tests.helpers.toy_runner import ROOT, ToyModel, make_runner


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('toy'))
    make_runner(work_dir).train()
    return work_dir


# --- 1. checkpoint loading -------------------------------------------------------------------

def test_resume_our_checkpoint(trained_work_dir, tmp_path):
    runner = make_runner(str(tmp_path), train_cfg=dict(by_epoch=True, max_epochs=3),
                         load_from=os.path.join(trained_work_dir, 'epoch_2.pth'), resume=True)
    runner.train()
    assert runner.epoch == 3


def test_resume_fails_on_the_released_stack(trained_work_dir, tmp_path):
    runner = make_runner(str(tmp_path), load_from=os.path.join(trained_work_dir, 'epoch_1.pth'),
                         resume=True)
    with compat.unpatched(), pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        runner.resume(os.path.join(trained_work_dir, 'epoch_1.pth'))


def test_load_from_our_checkpoint_uses_weights_only(trained_work_dir):
    model = ToyModel()
    ckpt = load_checkpoint(model, os.path.join(trained_work_dir, 'epoch_2.pth'))
    assert 'message_hub' in ckpt  # the whole mmengine checkpoint, read with weights_only=True
    # and plain torch.load(weights_only=True) of our checkpoints keeps working afterwards
    assert compat.SAFE_GLOBALS[0] in torch.serialization.get_safe_globals()
    torch.load(os.path.join(trained_work_dir, 'epoch_2.pth'), weights_only=True)


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_outside_weights_that_run_code_are_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': ToyModel().state_dict(), 'x': _Exploit()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        load_checkpoint(ToyModel(), path)


# --- 2. AMP on CPU ---------------------------------------------------------------------------

def test_amp_optim_wrapper_on_cpu_autocasts_bf16():
    model = ToyModel()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model.linear(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    loss = out.float().sum()
    wrapper.update_params(loss)
    assert 'loss_scaler' in wrapper.state_dict()


def test_amp_optim_wrapper_rejects_fp16_on_cpu():
    with pytest.raises(ValueError, match='bfloat16'):
        AmpOptimWrapper(dtype='float16',
                        optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1))


def test_amp_optim_wrapper_refuses_cpu_on_the_released_stack():
    with compat.unpatched(), pytest.raises(AssertionError, match='only available'):
        AmpOptimWrapper(optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1))


# --- 3. gloo DDP on CPU ----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(work_dir: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           f'--master_port={_free_port()}', os.path.join(ROOT, 'tests/helpers/toy_runner.py'),
           work_dir, *extra]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)


def test_two_process_gloo_training_on_cpu(tmp_path):
    result = _torchrun(str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    # the two processes share stdout, so their lines may interleave with each other's logs
    ranks = sorted(re.findall(r'RANK (\d) OK (-?\d+\.\d{6})', result.stdout))
    assert [rank for rank, _ in ranks] == ['0', '1']
    assert ranks[0][1] == ranks[1][1]  # DDP kept the replicas identical
    assert 'using gloo on CPU' in result.stdout + result.stderr


def test_two_process_training_fails_on_the_released_stack(tmp_path):
    result = _torchrun(str(tmp_path), '--unpatched')
    assert result.returncode != 0
    assert 'cuda' in result.stderr.lower() or 'nccl' in result.stderr.lower()


def test_ddp_wrapper_drops_device_ids_for_cpu_modules(tmp_path):
    import torch.distributed as dist
    from mmengine.model.wrappers import MMDistributedDataParallel
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        wrapped = MMDistributedDataParallel(ToyModel(), device_ids=[0])
        assert wrapped.device_ids is None
        with compat.unpatched(), pytest.raises(ValueError, match='device_ids'):
            MMDistributedDataParallel(ToyModel(), device_ids=[0])
    finally:
        dist.destroy_process_group()


# --- 4. no silent AMP on older Ascend SoCs -----------------------------------------------------

def test_contract_old_ascend_soc_keeps_the_configured_wrapper(simulated_npu):
    """Contract test (torch_npu stand-in, SoC 104 < 220): mmengine would force AmpOptimWrapper;
    the configured OptimWrapper is built and the decision is logged."""
    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper
    from mmengine.runner import runner as runner_module

    logger = MMLogger.get_current_instance()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        wrapper = runner_module.build_optim_wrapper(
            ToyModel(), dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    finally:
        logger.removeHandler(handler)
    assert type(wrapper) is OptimWrapper
    assert any('would silently replace optim_wrapper.type=OptimWrapper' in m for m in messages)
    simulated_npu.SOC_VERSION['value'] = 220  # 910B: full precision, nothing to say
    messages.clear()
    wrapper = runner_module.build_optim_wrapper(
        ToyModel(), dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    assert type(wrapper) is OptimWrapper and not messages


def test_released_builder_forces_amp_on_old_ascend_socs(monkeypatch):
    """Documents the upstream behaviour the fix above replaces."""
    from mmengine.optim.optimizer import builder
    monkeypatch.setattr(builder, 'is_npu_available', lambda: True)
    monkeypatch.setattr(builder, 'is_npu_support_full_precision', lambda: False)
    wrapper = builder.build_optim_wrapper(
        ToyModel(), dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    assert type(wrapper) is AmpOptimWrapper  # silently, whatever the config said


def test_cpu_bf16_convolution_emulation_matches_native_bf16():
    """On CPUs without bf16 units, CPU AMP computes convolutions as bf16-rounded fp32: the same
    numbers as PyTorch's (slow) native bf16 kernel, up to fp32 summation order."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 32, 3, padding=1, groups=2)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        native = conv(x)
        with compat.EmulatedBf16Convolution():
            emulated = conv(x)
    assert emulated.dtype == native.dtype == torch.bfloat16
    ulp = native.float().abs() * 2**-7 + 1e-6  # one bf16 unit in the last place
    assert ((emulated.float() - native.float()).abs() <= ulp).all()
    emulated.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_amp_optim_wrapper_emulates_only_without_bf16_units():
    from resnest_mm import device
    model = ToyModel()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.emulate_bf16_conv is (not device.cpu_native_bf16())
