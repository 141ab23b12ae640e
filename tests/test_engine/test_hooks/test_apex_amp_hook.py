"""ApexAmpHook: apex contract and numbers (stand-in apex), native fallback (real on CPU; fp16 in a
simulated NPU process), DDP order (real gloo)."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper

from resnest_mm.engine.hooks import ApexAmpHook
from resnest_mm.engine.optimizers import ApexAmpOptimWrapper
from resnest_mm.registry import MODEL_WRAPPERS
from tests.helpers.standins import npu_process_env
from tests.helpers.standins.npu_process_run import WeightsProbe, overflow_model
from tests.helpers.toy_runner import ToyModel, make_runner

HOOK = dict(type='ApexAmpHook', opt_level='O1', loss_scale='dynamic', combine_grad=True,
            float_functions=[('torch', 'sigmoid'), ('torch', 'softmax')])


def _calls(amp, name):
    return [c for c in amp.CALLS if c[0] == name]


def _weights_per_iteration(work_dir, overflow_at=-1, **overrides):
    """Train the toy run (8 iterations, same initial weights); the weights after each."""
    torch.manual_seed(0)
    probe = WeightsProbe()
    overrides['custom_hooks'] = overrides.get('custom_hooks', []) + [probe]
    make_runner(work_dir, model=overflow_model(overflow_at), **overrides).train()
    return probe.snapshots


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_contract_apex_initialize_scale_loss_and_state(standin_apex, tmp_path):
    """Contract test (apex stand-in): float functions registered before amp.initialize, which
    gets the bare model, the optimizer, O1, dynamic scaling and combine_grad=True; every
    backward goes through amp.scale_loss; amp state is saved and restored on resume."""
    amp = standin_apex
    runner = make_runner(str(tmp_path), custom_hooks=[HOOK])
    runner.train()
    registered = _calls(amp, 'register_float_function')
    assert [(c[1], c[2]) for c in registered] == [('torch', 'sigmoid'), ('torch', 'softmax')]
    assert not any(c[3] for c in registered)  # all before initialize
    (init, ) = _calls(amp, 'initialize')
    assert isinstance(init[1], ToyModel) and init[2] is runner.optim_wrapper.optimizer
    assert init[3] == dict(opt_level='O1', loss_scale='dynamic', combine_grad=True)
    assert isinstance(runner.optim_wrapper, ApexAmpOptimWrapper)
    assert len(_calls(amp, 'scale_loss')) == runner.iter == 8
    checkpoint = torch.load(os.path.join(str(tmp_path), 'epoch_2.pth'), weights_only=True)
    saved = checkpoint['optimizer']['apex_amp']
    assert saved == {'loss_scaler0': {'loss_scale': 2.0**16, 'unskipped': 8}}

    amp.reset()
    resumed = make_runner(str(tmp_path / 'resumed'), custom_hooks=[HOOK],
                          train_cfg=dict(by_epoch=True, max_epochs=3),
                          load_from=os.path.join(str(tmp_path), 'epoch_2.pth'), resume=True)
    resumed.train()
    assert _calls(amp, 'load_state_dict') == [('load_state_dict', saved)]
    assert resumed.epoch == 3


def test_contract_numbers_static_scale_is_plain_sgd_and_an_overflow_skips_one_step(
        standin_apex, tmp_path):
    """Contract test (apex stand-in, which scales, unscales, checks for overflow and skips as
    apex does, in fp32): with a static scale of 2^10 every weight after every iteration is plain
    SGD's bit for bit (scaling by a power of two is exact); with dynamic scaling and iteration
    3's loss overflowing once scaled, that step is skipped, the scale halves to 2^15 and
    training goes on."""
    amp = standin_apex
    plain = _weights_per_iteration(str(tmp_path / 'plain'))
    static = _weights_per_iteration(str(tmp_path / 'static'),
                                    custom_hooks=[dict(HOOK, loss_scale=2.0**10)])
    assert len(static) == len(plain) == 8
    assert all(_same(s, p) for s, p in zip(static, plain))
    assert amp.state_dict()['loss_scaler0']['loss_scale'] == 2.0**10

    dynamic = _weights_per_iteration(str(tmp_path / 'dynamic'), overflow_at=3,
                                     custom_hooks=[HOOK])
    assert all(_same(d, p) for d, p in zip(dynamic[:3], plain[:3]))  # 2^16: exact too
    assert _same(dynamic[3], dynamic[2]) and not _same(dynamic[4], dynamic[3])
    assert _calls(amp, 'skip_step') == [('skip_step', 0, 2.0**15)]
    assert amp.state_dict() == {'loss_scaler0': {'loss_scale': 2.0**15, 'unskipped': 4}}
    assert all(torch.isfinite(w).all() for w in dynamic[-1])


@pytest.mark.slow
def test_contract_native_fp16_fallback_numbers_in_a_simulated_npu_process(tmp_path):
    """Contract test (torch_npu stand-in registered for good in a subprocess, as real torch_npu
    registers itself): without apex the hook falls back to mmengine's AmpOptimWrapper, which on
    an NPU machine scales with torch.npu.amp.GradScaler (here torch's GradScaler on CPU tensors;
    autocast('npu') casts nothing, as no tensor is on that device). Until the overflow the
    weights are plain SGD's bit for bit (2^16 is exact); iteration 3 overflows once scaled:
    skipped, and the scale backs off to 2^15."""
    out = subprocess.run(
        [sys.executable, os.path.join('tests', 'helpers', 'standins', 'npu_process_run.py'),
         str(tmp_path), 'plain', 'hook-overflow-at-3'],
        env=npu_process_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    plain, hook = runs['plain'], runs['hook-overflow-at-3']
    assert plain['device'] == hook['device'] == 'npu' and hook['npu_device_type'] == 'npu:0'
    assert plain['wrapper'] == 'OptimWrapper' and hook['wrapper'] == 'AmpOptimWrapper'
    assert hook['scaler'] == 'torch_npu.npu.amp.GradScaler'  # mmengine's NPU import branch
    assert hook['snapshots'][:3] == plain['snapshots'][:3]
    assert hook['snapshots'][3] == hook['snapshots'][2] != hook['snapshots'][4]
    assert hook['loss_scale'] == 2.0**15 and len(hook['snapshots']) == 8


def test_contract_combine_grad_only_when_apex_accepts_it(standin_apex, tmp_path, monkeypatch):
    """Contract test (apex stand-in without combine_grad, like NVIDIA apex)."""
    amp = standin_apex
    original = amp.initialize

    def nvidia_initialize(models, optimizers=None, enabled=True, opt_level='O1',
                          loss_scale=None):
        return original(models, optimizers, enabled=enabled, opt_level=opt_level,
                        loss_scale=loss_scale)

    monkeypatch.setattr(amp, 'initialize', nvidia_initialize)
    make_runner(str(tmp_path), custom_hooks=[HOOK]).train()
    assert _calls(amp, 'initialize')[0][3]['combine_grad'] is None


def test_contract_npu_optimizer_becomes_apex_npu_fused_sgd(standin_apex, simulated_npu,
                                                           tmp_path):
    """Contract test (apex + torch_npu stand-ins): torch_npu's NpuFusedSGD from the config is
    rebuilt as apex's before amp.initialize, with the same groups and hyper-parameters; the
    optimizer wrapper zeroes gradients without set_to_none (apex's zero_grad takes none)."""
    import apex.optimizers
    runner = make_runner(
        str(tmp_path), custom_hooks=[HOOK],
        optim_wrapper=dict(optimizer=dict(type='NpuFusedSGD', lr=0.1, momentum=0.9,
                                          weight_decay=1e-4)))
    runner.train()
    optimizer = runner.optim_wrapper.optimizer
    assert isinstance(optimizer, apex.optimizers.NpuFusedSGD)
    assert optimizer.param_groups[0]['momentum'] == 0.9
    assert _calls(standin_apex, 'initialize')[0][2] is optimizer


def test_without_apex_falls_back_to_bf16_autocast_on_cpu(tmp_path):
    runner = make_runner(str(tmp_path), custom_hooks=[HOOK])
    runner.train()
    assert isinstance(runner.optim_wrapper, AmpOptimWrapper)
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    assert runner.param_schedulers[0].optimizer is runner.optim_wrapper


def test_without_apex_and_no_fallback_is_a_clear_error(tmp_path):
    runner = make_runner(str(tmp_path), custom_hooks=[dict(HOOK, fallback=False)])
    with pytest.raises(RuntimeError, match='apex is not installed'):
        runner.train()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='opt_level'):
        ApexAmpHook(opt_level='O4')
    with pytest.raises(ValueError, match='loss_scale'):
        ApexAmpHook(loss_scale='static')


class CountingDDP(MMDistributedDataParallel):
    """mmengine's DDP wrapper, recording for each one built how many amp.initialize calls the
    apex stand-in had seen by then."""

    built: list = []

    def __init__(self, module, **kwargs):
        CountingDDP.built.append(len(_calls(sys.modules['apex.amp'], 'initialize')))
        super().__init__(module=module, **kwargs)


def test_contract_the_model_is_wrapped_once_after_amp_initialize(standin_apex, tmp_path,
                                                                  monkeypatch):
    """Contract test (apex stand-in, which refuses a DDP-wrapped model) on a real gloo process
    group: the runner leaves the model bare until the optimizer exists, amp.initialize gets the
    bare model, and the one DDP wrapper is built after it (never a second one)."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(CountingDDP, 'built', [])
    MODEL_WRAPPERS.register_module(name='CountingDDP', module=CountingDDP, force=True)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    try:
        runner = make_runner(str(tmp_path / 'work'), custom_hooks=[HOOK], launcher='pytorch',
                             cfg=dict(model_wrapper_cfg=dict(type='CountingDDP',
                                                             broadcast_buffers=False)))
        assert isinstance(runner.model, ToyModel)  # not wrapped before apex
        runner.train()
        (init, ) = _calls(standin_apex, 'initialize')
        assert CountingDDP.built == [1]  # one wrapper, built after amp.initialize
        assert isinstance(runner.model, CountingDDP) and runner.model.module is init[1]
    finally:
        dist.destroy_process_group()
