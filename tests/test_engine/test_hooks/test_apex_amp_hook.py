"""ApexAmpHook: apex contract (stand-in apex), native fallback (real), DDP order (real gloo)."""
import gc
import os
import weakref

import pytest
import torch
import torch.distributed as dist
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper

from resnest_mm.engine.hooks import ApexAmpHook
from resnest_mm.engine.optimizers import ApexAmpOptimWrapper
from tests.helpers.toy_runner import ToyModel, make_runner

HOOK = dict(type='ApexAmpHook', opt_level='O1', loss_scale='dynamic', combine_grad=True,
            float_functions=[('torch', 'sigmoid'), ('torch', 'softmax')])


def _calls(amp, name):
    return [c for c in amp.CALLS if c[0] == name]


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


def test_contract_amp_initialize_runs_before_the_ddp_wrap(standin_apex, tmp_path, monkeypatch):
    """Contract test (apex stand-in) on a real gloo process group: amp.initialize gets the bare
    model, the model is wrapped in DDP afterwards, and the first wrapper is released."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    try:
        runner = make_runner(str(tmp_path / 'work'), custom_hooks=[HOOK], launcher='pytorch')
        first = weakref.ref(runner.model)
        assert isinstance(runner.model, MMDistributedDataParallel)
        runner.train()
        (init, ) = _calls(standin_apex, 'initialize')
        assert isinstance(init[1], ToyModel)
        assert isinstance(runner.model, MMDistributedDataParallel)
        assert runner.model.module is init[1]
        gc.collect()
        assert first() is None
    finally:
        dist.destroy_process_group()
