"""The ResNeSt backbone: options, classifier integration, TorchScript."""
import pytest
import torch
from mmengine.config import Config
from torch import nn

from resnest_mm.models import ResNeSt
from resnest_mm.registry import MODELS

pytestmark = pytest.mark.compat  # must hold on every supported torch


def _classifier(depth: int = 50, **backbone):
    cfg = Config.fromfile(f'configs/_base_/models/resnest{depth}.py')
    cfg.model.backbone.update(backbone)
    return MODELS.build(cfg.model)


def test_resnest50_classifier_parameter_count():
    model = _classifier(50)
    assert sum(p.numel() for p in model.parameters()) == 27_483_240


def test_registry_builds_our_backbone_not_mmpretrains():
    assert isinstance(_classifier(50).backbone, ResNeSt)


@pytest.mark.parametrize('depth,blocks,stem', [(50, (3, 4, 6, 3), 32), (101, (3, 4, 23, 3), 64),
                                               (200, (3, 24, 36, 3), 64),
                                               (269, (3, 30, 48, 8), 64)])
def test_depth_settings(depth, blocks, stem):
    model = ResNeSt(depth)
    assert tuple(len(getattr(model, f'layer{i}')) for i in range(1, 5)) == blocks
    assert model.conv1[0].out_channels == stem


def test_out_indices_shapes():
    model = ResNeSt(50, out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 256, 16, 16), (1, 512, 8, 8),
                                              (1, 1024, 4, 4), (1, 2048, 2, 2)]


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match='depth=18'):
        ResNeSt(18)
    with pytest.raises(ValueError, match='out_indices'):
        ResNeSt(50, out_indices=(4, ))


def test_frozen_stages_and_norm_eval():
    model = ResNeSt(50, frozen_stages=1, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.layer1.training
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.layer2[0].conv1.training  # only norms are held in eval mode


def test_zero_init_residual():
    model = ResNeSt(50, zero_init_residual=True)
    model.init_weights()
    assert all(torch.count_nonzero(m.bn3.weight) == 0 for m in model.layer1)
    model = ResNeSt(50)
    model.init_weights()
    assert torch.count_nonzero(model.layer1[0].bn3.weight) > 0


def test_syncbn_norm_cfg_builds():
    model = ResNeSt(50, norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


@pytest.mark.slow  # ResNeSt-50 forward and backward twice
def test_with_cp_matches_and_backpropagates():
    torch.manual_seed(0)
    plain = ResNeSt(50).train()
    ckpt = ResNeSt(50, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    out_plain = plain(x)[0]
    out_ckpt = ckpt(x)[0]
    torch.testing.assert_close(out_ckpt, out_plain)
    out_ckpt.sum().backward()
    assert ckpt.layer4[0].conv2.conv.weight.grad is not None


def test_torchscript_matches_eager():
    model = ResNeSt(50, out_indices=(2, 3)).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        eager, script_out = model(x), scripted(x)
    assert len(script_out) == 2
    for a, b in zip(eager, script_out):
        torch.testing.assert_close(a, b)
