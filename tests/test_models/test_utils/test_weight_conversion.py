"""Weight conversion: format detection, classifier handling, safe loading, atomic output."""
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from resnest_mm.models.utils import (
    convert_checkpoint,
    convert_state_dict,
    detect_format,
    load_weights,
)
from resnest_mm.registry import MODELS

pytestmark = pytest.mark.compat  # must hold on every supported torch


@pytest.fixture(scope='module')
def official_state_dict():
    import resnest.torch as original
    return original.resnest50().state_dict()


def _classifier(num_classes: int = 1000):
    cfg = Config.fromfile('configs/_base_/models/resnest50.py')
    cfg.model.head.num_classes = num_classes
    return MODELS.build(cfg.model)


def test_detect_format(official_state_dict):
    assert detect_format(official_state_dict) == 'official'
    ours, _ = convert_state_dict(official_state_dict)
    assert detect_format(ours) == 'resnest_mm'
    mmpre = {'backbone.stem.0.conv.weight': torch.zeros(1)}
    assert detect_format(mmpre) == 'mmpretrain'
    with pytest.raises(ValueError, match='not a ResNeSt'):
        detect_format({'features.0.weight': torch.zeros(1)})


def test_converted_keys_match_our_classifier(official_state_dict):
    ours, info = convert_state_dict(official_state_dict)
    assert set(ours) == set(_classifier().state_dict())
    assert info == dict(format='official', num_classes=1000, head_dropped=False)


def test_head_dropped_when_class_count_differs(official_state_dict, tmp_path):
    ours, info = convert_state_dict(official_state_dict, num_classes=10)
    assert info['head_dropped'] and not any(k.startswith('head.') for k in ours)
    src = tmp_path / 'src.pth'
    torch.save(official_state_dict, src)
    convert_checkpoint(str(src), str(tmp_path / 'dst.pth'), num_classes=10)
    model = _classifier(10)
    load_checkpoint(model, str(tmp_path / 'dst.pth'), strict=False)
    torch.testing.assert_close(model.backbone.conv1[0].weight,
                               official_state_dict['conv1.0.weight'])


def test_unwraps_containers_and_ddp_prefix(official_state_dict, tmp_path):
    path = tmp_path / 'wrapped.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in official_state_dict.items()},
                'epoch': 3}, path)
    assert set(load_weights(str(path))) == set(official_state_dict)


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_refuses_a_pickle_that_runs_code(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': _Exploit()}, f)
    with pytest.raises(ValueError, match=r'evil.pth is refused: it holds posix.system, which is '
                                         r'not plain data'):
        load_weights(str(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_weights(str(tmp_path / 'nope.pth'))


def test_output_written_atomically(official_state_dict, tmp_path):
    src, dst = tmp_path / 'src.pth', tmp_path / 'out' / 'dst.pth'
    torch.save(official_state_dict, src)
    convert_checkpoint(str(src), str(dst))
    # no temporary left behind; the digest beside it
    assert sorted(os.listdir(dst.parent)) == ['dst.pth', 'dst.pth.sha256']
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['converted_from'] == 'official'


def _randomised_ours():
    model = _classifier().eval()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():  # BN statistics too: eval mode is no identity
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.2 + 0.9
                             if 'running_var' in name or name.endswith('bn1.weight')
                             else torch.randn(tensor.shape, generator=gen) * 0.05)
    return model


@pytest.mark.parametrize('fmt', [pytest.param('official', marks=pytest.mark.slow),
                                 pytest.param('timm', marks=pytest.mark.slow), 'mmpretrain'])
def test_export_loads_strictly_with_equal_logits(fmt):
    """ours -> official/timm/mmpretrain: the target's own model loads it strictly and gives our
    logits (and reading it back gives our weights)."""
    import resnest.torch as original
    import timm
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    from resnest_mm.models.utils import export_state_dict
    ours = _randomised_ours()
    exported = export_state_dict(ours.state_dict(), fmt)
    if fmt == 'official':
        target = original.resnest50()
    elif fmt == 'timm':
        target = timm.create_model('resnest50d')
    else:
        target = MMPRETRAIN_MODELS.build(dict(
            type='mmpretrain.ImageClassifier',
            backbone=dict(type='mmpretrain.ResNeSt', depth=50, stem_channels=64),
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(type='mmpretrain.LinearClsHead', num_classes=1000, in_channels=2048)))
    target.load_state_dict(exported, strict=True)
    target.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(x, mode='tensor')
        got = target(x, mode='tensor') if fmt == 'mmpretrain' else target(x)
    assert (got - expected).abs().max().item() <= 1e-4 * max(1., expected.abs().max().item())
    back, info = convert_state_dict(exported, None if fmt == 'timm' else fmt)
    assert info['format'] == ('official' if fmt == 'timm' else fmt)
    assert all(torch.equal(back[k], v) for k, v in ours.state_dict().items())


def test_export_refuses_what_is_not_ours(official_state_dict):
    from resnest_mm.models.utils import export_state_dict
    with pytest.raises(ValueError, match='in the official layout, not resnest_mm'):
        export_state_dict(official_state_dict, 'mmpretrain')
    ours, _ = convert_state_dict(official_state_dict)
    with pytest.raises(ValueError, match="unknown target format 'onnx'"):
        export_state_dict(ours, 'onnx')
