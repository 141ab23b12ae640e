"""mmpretrain's ResNeSt configs on our backbone: the same network, or a one-sentence refusal.

The configs are mmpretrain 1.2's own (installed with it under ``mmpretrain/.mim/configs``), with
only the backbone type swapped to ``resnest_mm.ResNeSt``.
"""
import os

import mmpretrain
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import nn

from resnest_mm.models import ResNeSt
from resnest_mm.models.utils import convert_state_dict, export_state_dict

MIM_CONFIGS = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'configs')


def _mmpretrain_model_cfg(depth: int) -> Config:
    return Config.fromfile(os.path.join(MIM_CONFIGS, '_base_', 'models',
                                        f'resnest{depth}.py')).model


def _build(model_cfg, ours: bool) -> nn.Module:
    model_cfg = ConfigDict(model_cfg)
    model_cfg.train_cfg = None  # (Mixup: the logits are what is compared)
    if ours:
        model_cfg.backbone = dict(model_cfg.backbone, type='resnest_mm.ResNeSt')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(model_cfg)


def _randomise(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # eval-mode BN must not be an identity
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                # Kaiming-normal, fan-out (init's generator= needs torch >= 2.3)
                fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_out) ** .5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


def _assert_same_logits(a: nn.Module, b: nn.Module, size: int = 32) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = a(x, mode='tensor'), b(x, mode='tensor')
    scale = max(1.0, expected.abs().max().item())
    assert (got - expected).abs().max().item() <= 1e-4 * scale


@pytest.mark.parametrize('depth', [50, 101])
def test_mmpretrain_config_builds_mmpretrains_network(depth):
    """The silent trap: mmpretrain's stem_channels=64 is our stem_width=32."""
    cfg = _mmpretrain_model_cfg(depth)
    theirs, ours = _build(cfg, ours=False), _build(cfg, ours=True)
    assert isinstance(ours.backbone, ResNeSt)
    count = sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count
    assert ours.backbone.conv1[0].out_channels == theirs.backbone.stem[0].conv.out_channels
    # mmpretrain's ResNet zero-initialises the residuals by default; so do we for its configs
    assert ours.backbone.zero_init_residual


@pytest.mark.slow  # (two ResNeSt-50 classifiers each: ~5 s)
@pytest.mark.parametrize('backbone', [
    dict(),  # the config as mmpretrain ships it
    # cardinality: width_per_group is our base_width
    dict(groups=2, width_per_group=40, radix=4),
    # mmpretrain ignores width_per_group at groups=1
    dict(groups=1, width_per_group=40),
    dict(stem_channels=32, avg_down_stride=False, reduction_factor=2),
])
def test_same_weights_give_mmpretrains_logits(backbone):
    cfg = _mmpretrain_model_cfg(50)
    cfg.backbone.update(backbone)
    theirs = _randomise(_build(cfg, ours=False))
    ours = _build(cfg, ours=True).eval()
    converted, _ = convert_state_dict(theirs.state_dict(), 'mmpretrain')
    ours.load_state_dict(converted, strict=True)
    _assert_same_logits(theirs, ours)
    # and back: our weights in mmpretrain's layout load strictly into mmpretrain's model
    theirs.load_state_dict(export_state_dict(ours.state_dict(), 'mmpretrain'), strict=True)
    _assert_same_logits(theirs, ours)


def test_drop_path_rates_follow_mmpretrain():
    theirs = _build(dict(type='ImageClassifier', backbone=dict(
        type='ResNeSt', depth=50, drop_path_rate=0.2)), ours=False).backbone
    ours = ResNeSt(50, drop_path_rate=0.2, num_stages=4)

    def rates(model, name):
        return [getattr(getattr(m, name), 'drop_prob', 0.) for m in model.modules()
                if hasattr(m, 'conv3')]

    assert rates(ours, 'drop_path') == pytest.approx(rates(theirs, 'drop_path'))
    assert max(rates(ours, 'drop_path')) == pytest.approx(0.2)
    out = ours.train()(torch.randn(2, 3, 32, 32))  # and it runs
    assert out[0].shape == (2, 2048, 1, 1)


def test_our_own_defaults_stay_when_no_mmpretrain_argument():
    assert not ResNeSt(50).zero_init_residual
    assert ResNeSt(50, stem_channels=64).zero_init_residual  # mmpretrain's default
    assert not ResNeSt(50, stem_channels=64, zero_init_residual=False).zero_init_residual


@pytest.mark.parametrize('arg,value,says', [
    ('num_stages', 3, 'out_indices'),
    ('style', 'caffe', "style='pytorch'"),
    ('deep_stem', False, '3-conv deep stem'),
    ('avg_down', False, 'average-pool shortcut'),
    ('strides', (1, 2, 2, 1), '(1, 2, 2, 2)'),
    ('dilations', (1, 1, 2, 4), 'dilated'),
    ('contract_dilation', True, 'dilated'),
    ('base_channels', 32, 'base_width'),
    ('expansion', 2, 'fixed at 4'),
    ('conv_cfg', dict(type='ConvWS'), 'plain Conv2d'),
    ('act_cfg', dict(type='GELU'), 'ReLU only'),
    ('stem_channels', 63, 'stem_width=31'),
])
def test_mmpretrain_arguments_we_do_not_build_are_refused(arg, value, says):
    with pytest.raises(ValueError, match=f'backbone.{arg}=') as info:
        ResNeSt(50, **{arg: value})
    assert says in str(info.value)


def test_accepted_mmpretrain_values_build():
    model = ResNeSt(50, num_stages=4, style='pytorch', deep_stem=True, avg_down=True,
                    strides=[1, 2, 2, 2], dilations=(1, 1, 1, 1), base_channels=64,
                    expansion=4, conv_cfg=None, act_cfg=dict(type='ReLU', inplace=True),
                    contract_dilation=False)
    assert model.conv1[0].out_channels == 32


def test_one_setting_given_both_ways_is_refused():
    with pytest.raises(ValueError, match='stem_width=16 is set too'):
        ResNeSt(50, stem_channels=64, stem_width=16)
    with pytest.raises(ValueError, match='base_width=24 is set too'):
        ResNeSt(50, groups=2, width_per_group=40, base_width=24)
    assert ResNeSt(50, stem_channels=64, stem_width=32).conv1[0].out_channels == 32


def test_unknown_argument_names_the_closest():
    with pytest.raises(KeyError, match="did you mean 'stem_channels'"):
        ResNeSt(50, stem_chanels=64)
