"""NpuFusedSGD: the right implementation per device, SGD semantics, no-decay grouping."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIMIZERS as ROOT_OPTIMIZERS
from mmengine.registry import DefaultScope
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm import compat
from resnest_mm.engine.optimizers import FusedSGD
from resnest_mm.registry import MODELS, OPTIMIZERS

pytestmark = pytest.mark.compat  # must hold on every supported torch

HYPER = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3)


def _build(params, **kwargs):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return OPTIMIZERS.build(dict(type='NpuFusedSGD', params=params, **kwargs))


@pytest.mark.skipif(not compat.fused_sgd('cpu'),
                    reason=f'torch {torch.__version__} has no fused CPU SGD (see test_compat)')
@pytest.mark.parametrize('nesterov', [False, True])
def test_cpu_uses_fused_torch_sgd_with_the_same_updates(nesterov):
    torch.manual_seed(0)
    hyper = dict(HYPER, dampening=0.0) if nesterov else HYPER
    ours_params = [nn.Parameter(torch.randn(5, 3)), nn.Parameter(torch.randn(3))]
    ref_params = [nn.Parameter(p.detach().clone()) for p in ours_params]
    ours = _build(ours_params, nesterov=nesterov, **hyper)
    reference = torch.optim.SGD(ref_params, nesterov=nesterov, foreach=False, **hyper)
    assert type(ours) is FusedSGD and ours.defaults['fused'] is True
    for _ in range(3):
        grads = [torch.randn_like(p) for p in ours_params]
        for p, r, g in zip(ours_params, ref_params, grads):
            p.grad, r.grad = g.clone(), g.clone()
        ours.step()
        reference.step()
    for p, r in zip(ours_params, ref_params):
        torch.testing.assert_close(p, r)


def test_no_decay_on_every_norm_and_bias_of_resnest50():
    cfg = Config.fromfile('configs/_base_/models/resnest50.py')
    model = MODELS.build(cfg.model)
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        wrapper = build_optim_wrapper(model, dict(
            optimizer=dict(type='NpuFusedSGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
            paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.)))
    no_decay = {id(p) for g in wrapper.optimizer.param_groups if g['weight_decay'] == 0
                for p in g['params']}
    expected = set()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            expected |= {id(module.weight), id(module.bias)}
        elif getattr(module, 'bias', None) is not None:
            expected.add(id(module.bias))
    stem_bns = [model.backbone.conv1[1], model.backbone.conv1[4], model.backbone.bn1]
    shortcut_bns = [m.downsample[2] for layer in (model.backbone.layer1, model.backbone.layer4)
                    for m in layer[:1]]
    assert all(id(bn.weight) in no_decay for bn in stem_bns + shortcut_bns)  # the seed's miss
    assert no_decay == expected
    # 71 BNs (3 stem, 4 per block x 16, 4 shortcut) x (weight, bias), 16 x 2 attention fc
    # biases, the head's bias
    assert len(no_decay) == 2 * 71 + 32 + 1


def test_our_name_wins_over_torch_npus_in_the_root_registry():
    """mmengine registers torch_npu's NpuFusedSGD in its root registry on NPU machines."""
    class TorchNpuLike(torch.optim.SGD):
        pass

    ROOT_OPTIMIZERS.register_module(name='NpuFusedSGD', module=TorchNpuLike, force=True)
    try:
        optimizer = _build([nn.Parameter(torch.zeros(2))], lr=0.1)
        assert not isinstance(optimizer, TorchNpuLike)
    finally:
        ROOT_OPTIMIZERS._module_dict.pop('NpuFusedSGD')


def test_contract_simulated_npu_picks_torch_npu(simulated_npu):
    """Contract test (torch_npu stand-in): on an NPU, torch_npu.optim.NpuFusedSGD is built."""
    optimizer = _build([nn.Parameter(torch.zeros(2))], **HYPER)
    assert isinstance(optimizer, simulated_npu.optim.NpuFusedSGD)
    assert optimizer.defaults['momentum'] == 0.9 and optimizer.defaults['dampening'] == 0.1


def test_contract_simulated_npu_with_apex_amp_picks_apex(simulated_npu, standin_apex):
    """Contract test (apex + torch_npu stand-ins): under apex AMP, apex's class is built, and it
    refuses to step before amp.initialize, as Ascend apex's does."""
    import apex.optimizers
    param = nn.Parameter(torch.zeros(2))
    optimizer = _build([param], apex_amp=True, **HYPER)
    assert isinstance(optimizer, apex.optimizers.NpuFusedSGD)
    param.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match='should be used with AMP'):
        optimizer.step()
