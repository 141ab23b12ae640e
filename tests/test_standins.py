"""Self-tests of the contract-test stand-ins (tests/helpers/standins): each refuses what the real
library refuses and computes what it computes; each test names its source. These test the
stand-ins, not an NPU or apex."""
import os

import pytest
import torch
import torch.distributed as dist
from mmengine.registry import OPTIMIZERS as ROOT_OPTIMIZERS
from torch import nn

from tests.helpers.standins import apex_standin, npu_simulation

HYPER = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(4, 2)


def _backward(loss_fn, amp, optimizer, factor=1.0):
    with amp.scale_loss(loss_fn() * factor, optimizer) as scaled:
        scaled.backward()


def _loss(model):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, generator=gen)
    return lambda: model(x).pow(2).mean()


# --- apex: what amp.initialize refuses ---------------------------------------------------------

def test_standin_apex_refuses_parallel_wrapped_models(standin_apex, tmp_path):
    """Stand-in self-test (apex; upstream apex/amp/_initialize.py check_models)."""
    model = _model()
    with pytest.raises(RuntimeError, match='Parallel wrappers should only be applied'):
        standin_apex.initialize(nn.DataParallel(model), torch.optim.SGD(model.parameters(),
                                                                         lr=0.1))
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model)
        with pytest.raises(RuntimeError, match='DistributedDataParallel'):
            standin_apex.initialize(ddp, torch.optim.SGD(model.parameters(), lr=0.1))
    finally:
        dist.destroy_process_group()


def test_standin_apex_refuses_fp16_params_and_an_optimizer_twice(standin_apex):
    """Stand-in self-test (apex; upstream _initialize.py check_params_fp32,
    _process_optimizer.py)."""
    half = _model().half()
    with pytest.raises(RuntimeError, match='Found param weight'):
        standin_apex.initialize(half, torch.optim.SGD(half.parameters(), lr=0.1))
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    standin_apex.initialize(model, optimizer)
    with pytest.raises(RuntimeError, match='only be passed through amp.initialize once'):
        standin_apex.initialize(model, optimizer)


@pytest.mark.parametrize('opt_level', ['O0', 'O3'])
def test_standin_apex_fused_optimizer_only_under_o1_o2(standin_apex, opt_level):
    """Stand-in self-test (apex; patch/npu.patch _process_optimizer.py)."""
    import apex.optimizers
    model = _model()
    with pytest.raises(RuntimeError, match='npu fused optimizer can only be used'):
        standin_apex.initialize(model, apex.optimizers.NpuFusedSGD(model.parameters(), lr=0.1),
                                opt_level=opt_level)


def test_standin_apex_o2_combined_or_fused_needs_master_weights(standin_apex):
    """Stand-in self-test (apex; patch/npu.patch _process_optimizer.py)."""
    import apex.optimizers
    for kwargs, make in ((dict(combine_grad=True), torch.optim.SGD),
                         ({}, apex.optimizers.NpuFusedSGD)):
        model = _model()
        with pytest.raises(RuntimeError, match='master_weights should be True'):
            standin_apex.initialize(model, make(model.parameters(), lr=0.1), opt_level='O2',
                                    master_weights=False, **kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(opt_level='O0', combine_grad=True), 'combine_grad=True or check_combined_tensors'),
    (dict(opt_level='O3', check_combined_tensors=True), 'combine_grad=True or check_combined'),
    (dict(combine_ddp=True), 'Combine_grad should be True'),
    (dict(opt_level='O2', user_cast_preferred=True), 'user_cast_preferred=True'),
    (dict(master_weights=True), 'master_weights with O1'),
    (dict(keep_batchnorm_fp32=True), 'keep_batchnorm_fp32 should be None'),
    (dict(opt_level='O4'), 'Unexpected optimization level'),
])
def test_standin_apex_option_rules(standin_apex, kwargs, message):
    """Stand-in self-test (apex; upstream frontend.py Properties, patch/npu.patch frontend.py)."""
    model = _model()
    with pytest.raises(RuntimeError, match=message):
        standin_apex.initialize(model, torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


# --- apex: what it does to the process and the optimizer ---------------------------------------

def test_standin_apex_replaces_module_zero_grad_until_the_fixture_ends():
    """Stand-in self-test (apex; patch/npu.patch _initialize.py zero_grad): with combine_grad
    every nn.Module's zero_grad asserts set_to_none=False, for the whole process; the
    optimizer's zero_grad takes no arguments. The fixture puts torch's back."""
    torch_zero_grad = nn.Module.zero_grad
    with apex_standin() as amp:
        model = _model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        amp.initialize(model, optimizer, combine_grad=True)
        other = nn.Linear(2, 2)  # any module, not only the one passed to apex
        other(torch.ones(1, 2)).sum().backward()
        with pytest.raises(AssertionError, match='set_to_none'):
            other.zero_grad(set_to_none=True)
        other.zero_grad()
        assert other.weight.grad is not None and not other.weight.grad.any()
        with pytest.raises(TypeError):
            optimizer.zero_grad(set_to_none=True)
    assert nn.Module.zero_grad is torch_zero_grad


def test_standin_apex_dynamic_scaling_skips_backs_off_and_grows(standin_apex):
    """Stand-in self-test (apex; upstream scaler.py update_scale and handle.py's one-shot skip,
    patch/npu.patch growth/back-off factors): an overflowing backward skips the next step and
    halves the scale; ``scale_window`` good steps double it. A static scale (upstream: no
    overflow check without dynamic scaling) unscales exactly and never skips."""
    amp = standin_apex
    static, reference = _model(), _model()
    optimizer = torch.optim.SGD(static.parameters(), **HYPER)
    amp.initialize(static, optimizer, loss_scale=2.0**12)
    _backward(_loss(static), amp, optimizer)
    _loss(reference)().backward()
    assert all(torch.equal(p.grad, r.grad) for p, r in zip(static.parameters(),
                                                           reference.parameters()))
    optimizer.zero_grad()
    _backward(_loss(static), amp, optimizer, factor=float('inf'))
    optimizer.step()
    assert not torch.isfinite(static.weight).all()  # applied, not skipped
    assert amp.state_dict()['loss_scaler0']['loss_scale'] == 2.0**12

    amp.reset()
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), **HYPER)
    amp.initialize(model, optimizer, dynamic_init_scale=2.0**8, scale_window=2)
    loss = _loss(model)
    before = [p.detach().clone() for p in model.parameters()]
    _backward(loss, amp, optimizer, factor=float('inf'))
    optimizer.step()
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert amp.state_dict()['loss_scaler0'] == {'loss_scale': 2.0**7, 'unskipped': 0}
    scales = []
    for _ in range(2):
        optimizer.zero_grad()
        _backward(loss, amp, optimizer)
        optimizer.step()
        scales.append(amp.state_dict()['loss_scaler0']['loss_scale'])
    assert scales == [2.0**7, 2.0**8]
    assert not all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_standin_apex_combined_gradients_leave_a_late_parameter_scaled(standin_apex):
    """Stand-in self-test (apex; patch/npu.patch combined_init_no_master_weights: params without
    a gradient at the first backward leave the stash lists): a layer first used at the second
    iteration keeps its scaled gradient (never unscaled), while the combined ones are
    unscaled."""
    amp = standin_apex
    first, late = _model(0), _model(1)
    optimizer = torch.optim.SGD(list(first.parameters()) + list(late.parameters()), lr=0.1)
    amp.initialize(nn.ModuleList([first, late]), optimizer, combine_grad=True,
                   loss_scale=2.0**4)
    x = torch.ones(3, 4)
    _backward(lambda: first(x).sum(), amp, optimizer)
    optimizer.zero_grad()
    _backward(lambda: first(x).sum() + late(x).sum(), amp, optimizer)
    assert torch.equal(first.bias.grad, torch.full((2, ), 3.0))
    assert torch.equal(late.bias.grad, torch.full((2, ), 3.0 * 2**4))


def test_standin_apex_npu_fused_sgd_equals_plain_sgd_and_needs_amp(standin_apex):
    """Stand-in self-test (apex; src/apex/optimizers/npu_fused_sgd.py): no step before
    amp.initialize; with it, combined-buffer SGD gives plain SGD's weights for what had a
    gradient at the first backward, and never updates a param that had none then."""
    import apex.optimizers
    model, reference = _model(), _model()
    late = nn.Parameter(torch.ones(2))
    optimizer = apex.optimizers.NpuFusedSGD(list(model.parameters()) + [late], dampening=0.1,
                                            **HYPER)
    plain = torch.optim.SGD(reference.parameters(), dampening=0.1, foreach=False, **HYPER)
    _loss(model)().backward()
    with pytest.raises(RuntimeError, match='should be used with AMP'):
        optimizer.step()
    optimizer.zero_grad()
    standin_apex.initialize(model, optimizer, loss_scale=2.0**8)
    for _ in range(3):
        optimizer.zero_grad()
        plain.zero_grad()
        _backward(_loss(model), standin_apex, optimizer)
        _loss(reference)().backward()
        late.grad = torch.ones(2)  # first given after the combination
        optimizer.step()
        plain.step()
    for p, r in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, r)
    assert torch.equal(late, torch.ones(2))


# --- torch_npu ---------------------------------------------------------------------------------

def test_standin_torch_npu_fused_sgd_refusals(simulated_npu):
    """Stand-in self-test (torch_npu; optim/npu_fused_optim_base.py, utils/combine_tensors.py):
    fp32/fp16 only, contiguous only, no set_to_none."""
    NpuFusedSGD = simulated_npu.optim.NpuFusedSGD  # noqa: N806
    for param, error, message in (
            (nn.Parameter(torch.zeros(3, 4).t()), RuntimeError, 'must be contiguous'),
            (nn.Parameter(torch.zeros(3, dtype=torch.bfloat16)), TypeError, 'float32 or float16'),
            (nn.Parameter(torch.zeros(3, dtype=torch.float64)), TypeError, 'float32 or float16')):
        param.grad = torch.zeros_like(param)
        with pytest.raises(error, match=message):
            NpuFusedSGD([param], lr=0.1).step()
    with pytest.raises(ValueError, match='set_to_none is not supported'):
        NpuFusedSGD([nn.Parameter(torch.zeros(3))], lr=0.1).zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match='Nesterov'):
        NpuFusedSGD([nn.Parameter(torch.zeros(3))], lr=0.1, nesterov=True)


def test_standin_torch_npu_fused_sgd_works_on_what_it_combined(simulated_npu):
    """Stand-in self-test (torch_npu; optim/npu_fused_sgd.py over combined buffers): plain
    SGD's numbers for what had a gradient at the first step; a param whose first gradient comes
    later is never updated; a gradient re-made outside the buffer (set to None, then backward
    again) is not seen."""
    first, late = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    reference = nn.Parameter(torch.ones(3))
    optimizer = simulated_npu.optim.NpuFusedSGD([first, late], dampening=0.1, **HYPER)
    plain = torch.optim.SGD([reference], dampening=0.1, foreach=False, **HYPER)
    for step in range(3):
        for p in (first, reference):
            p.grad = torch.full((3, ), float(step + 1)) if p.grad is None else \
                p.grad.fill_(step + 1)
        if step > 0:
            late.grad = torch.ones(2)
        optimizer.step()
        plain.step()
    assert torch.equal(first, reference) and torch.equal(late, torch.ones(2))
    first.grad = None  # as zero_grad(set_to_none=True) would
    first.grad = torch.full((3, ), 100.0)
    reference.grad.fill_(3.0)  # the combined buffer still holds step 3's gradient
    optimizer.step()
    plain.step()
    assert torch.equal(first, reference)


def test_simulated_npu_runs_mmengines_npu_branches(simulated_npu, monkeypatch):
    """Stand-in self-test (torch_npu + mmengine 0.10.7 device/utils.py, dist/utils.py,
    optim/optimizer/builder.py and amp_optimizer_wrapper.py): mmengine sees an NPU, its torch
    distributed init takes the NPU branch (set_device, hccl) on the stand-in's hccl backend,
    which really reduces; AmpOptimWrapper scales with torch.npu.amp.GradScaler and is forced on
    SoC < 220; torch_npu's optimizers are in mmengine's root registry."""
    from mmengine import device as mm_device
    from mmengine.dist import init_dist
    from mmengine.optim import AmpOptimWrapper, build_optim_wrapper

    assert mm_device.is_npu_available() and mm_device.get_device() == 'npu'
    assert not mm_device.is_npu_support_full_precision()  # SoC 104
    forced = build_optim_wrapper(_model(), dict(type='OptimWrapper',
                                                optimizer=dict(type='SGD', lr=0.1)))
    assert type(forced) is AmpOptimWrapper  # mmengine's silent swap on the 910A family
    simulated_npu.SOC_VERSION['value'] = 223
    assert mm_device.is_npu_support_full_precision()
    assert ROOT_OPTIMIZERS.get('NpuFusedSGD') is simulated_npu.optim.NpuFusedSGD
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(_model().parameters(), lr=0.1))
    assert type(wrapper.loss_scaler) is torch.npu.amp.GradScaler
    for key, value in dict(RANK='0', LOCAL_RANK='3', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(29500 + os.getpid() % 1000)).items():
        monkeypatch.setenv(key, value)
    init_dist('pytorch', backend='nccl')  # mmengine ignores the backend on NPU: hccl
    try:
        assert dist.get_backend() == 'hccl' and torch.npu.current_device() == 3
        tensor = torch.ones(2)
        dist.all_reduce(tensor)
        assert torch.equal(tensor, torch.ones(2))
    finally:
        dist.destroy_process_group()


def test_npu_simulation_is_undone():
    """Stand-in self-test: nothing of the simulation outlives it."""
    from mmengine.device import utils as device_utils
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    scaler_cls = amp_optimizer_wrapper.GradScaler
    with npu_simulation():
        assert hasattr(torch, 'npu') and 'hccl' in dist.Backend.backend_list
    assert not hasattr(torch, 'npu') and 'hccl' not in dist.Backend.backend_list
    assert not hasattr(dist.Backend, 'HCCL') and 'HCCL' not in dist.Backend._plugins
    assert device_utils.get_device() != 'npu' and not device_utils.is_npu_available()
    assert amp_optimizer_wrapper.GradScaler is scaler_cls
    assert 'NpuFusedSGD' not in ROOT_OPTIMIZERS._module_dict
