"""Parity with the original network: same weights, same eval-mode logits.

Sources: the authors' package ``resnest`` (PyPI 0.0.5), timm and mmpretrain. Each source model
gets random weights and randomised BN statistics (so eval mode is not an identity), its state
dict goes to a file, ``convert_checkpoint`` converts it, and our ``ImageClassifier`` loads the
result through mmengine's ``load_checkpoint`` (strict). Tolerance:
``1e-4 * max(1, max |logit|)`` in fp32; with random weights the deep nets' logits reach 1e4.

``RESNEST_MM_TEST_DEVICE=cuda`` runs the comparisons on the GPU (``benchmarks/gpu_check.sh``),
with TF32 off so that fp32 means fp32.
"""
import os

import pytest
import resnest.torch as original
import timm
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import nn

from resnest_mm.models.utils import convert_checkpoint
from resnest_mm.registry import MODELS

pytestmark = pytest.mark.slow  # compares every depth against two reference implementations

DEVICE = os.environ.get('RESNEST_MM_TEST_DEVICE', 'cpu')
if DEVICE == 'cuda':
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

# Input size per depth: smaller for the deepest nets to keep the suite fast.
INPUT_SIZE = {50: 64, 101: 64, 200: 32, 269: 32}
TIMM_NAMES = {50: 'resnest50d', 101: 'resnest101e', 200: 'resnest200e', 269: 'resnest269e'}


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                # The original's init (Kaiming-normal, fan-out) for every source, so the logits
                # of all three are far from zero and a mismatch cannot hide.
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu',
                                        generator=gen)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


def _source(fmt: str, depth: int) -> nn.Module:
    if fmt == 'official':
        return getattr(original, f'resnest{depth}')()
    if fmt == 'timm':
        return timm.create_model(TIMM_NAMES[depth])
    stem = 64 if depth == 50 else 128
    return MMPRETRAIN_MODELS.build(dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmpretrain.ResNeSt', depth=depth, stem_channels=stem),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=1000, in_channels=2048)))


def _source_logits(fmt: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x, mode='tensor') if fmt == 'mmpretrain' else model(x)


def _ours(depth: int, **backbone) -> nn.Module:
    cfg = Config.fromfile(f'configs/_base_/models/resnest{depth}.py')
    cfg.model.backbone.update(backbone)
    return MODELS.build(cfg.model).eval()


def _check(source: nn.Module, ours: nn.Module, fmt: str, size: int, tmp_path, label: str,
           channels_last: bool = False):
    src, dst = tmp_path / 'source.pth', tmp_path / 'converted.pth'
    torch.save(source.state_dict(), src)
    info = convert_checkpoint(str(src), str(dst), fmt=None if fmt == 'timm' else fmt)
    assert info['num_classes'] == 1000 and not info['head_dropped']
    load_checkpoint(ours, str(dst), map_location='cpu', strict=True)
    # ResNeSt-269 files are ~400 MB each: free the disk before the next case.
    src.unlink()
    dst.unlink()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    source, ours = source.to(DEVICE), ours.to(DEVICE)
    with torch.no_grad():
        expected = _source_logits(fmt, source, x)
        if channels_last:  # our NHWC split-attention path against the source in NCHW
            ours = ours.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        got = ours(x, mode='tensor')
    diff = (got - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    label += ' channels_last' if channels_last else ''
    print(f'PARITY {label} format={fmt} max|logit|={scale:.3g} max_abs_diff={diff:.3g}')
    assert diff <= 1e-4 * scale, f'{label} {fmt}: max abs diff {diff} (max |logit| {scale})'


@pytest.mark.parametrize('fmt', ['official', 'timm', 'mmpretrain'])
@pytest.mark.parametrize('depth', [50, 101, 200, 269])
def test_logits_match_source(depth, fmt, tmp_path):
    torch.manual_seed(depth)
    source = _randomise(_source(fmt, depth), seed=depth)
    _check(source, _ours(depth), fmt, INPUT_SIZE[depth], tmp_path, f'resnest{depth}')


# The original's ablation models: radix, cardinality, width and avd_first.
FAST_VARIANTS = {
    'resnest50_fast_1s1x64d': dict(radix=1, groups=1, base_width=64),
    'resnest50_fast_2s1x64d': dict(radix=2, groups=1, base_width=64),
    'resnest50_fast_4s1x64d': dict(radix=4, groups=1, base_width=64),
    'resnest50_fast_1s2x40d': dict(radix=1, groups=2, base_width=40),
    'resnest50_fast_2s2x40d': dict(radix=2, groups=2, base_width=40),
    'resnest50_fast_4s2x40d': dict(radix=4, groups=2, base_width=40),
    'resnest50_fast_1s4x24d': dict(radix=1, groups=4, base_width=24),
}


@pytest.mark.parametrize('name', sorted(FAST_VARIANTS))
def test_fast_variants_match_original(name, tmp_path):
    torch.manual_seed(1)
    source = _randomise(getattr(original, name)(), seed=1)
    ours = _ours(50, avd_first=True, **FAST_VARIANTS[name])
    _check(source, ours, 'official', 32, tmp_path, name)


@pytest.mark.parametrize('name', ['resnest50', 'resnest50_fast_2s2x40d', 'resnest50_fast_4s1x64d'])
def test_channels_last_matches_the_original(name, tmp_path):
    """Our channels_last forward (radix 2 takes another formulation there) is the same network."""
    torch.manual_seed(2)
    source = _randomise(getattr(original, name)(), seed=2)
    ours = _ours(50, **(dict(avd_first=True, **FAST_VARIANTS[name]) if name in FAST_VARIANTS
                        else {}))
    _check(source, ours, 'official', 64, tmp_path, name, channels_last=True)
