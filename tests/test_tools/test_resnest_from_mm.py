"""tools/model_converters/resnest_from_mm.py as a user runs it: ours -> mmpretrain/original."""
import subprocess
import sys

import pytest
import resnest.torch as original
import torch
from mmengine.config import Config
from mmpretrain.apis import get_model

from resnest_mm.models.utils import convert_state_dict


def _run(repo_root, *args):
    return subprocess.run([sys.executable, 'tools/model_converters/resnest_from_mm.py', *args],
                          cwd=repo_root, capture_output=True, text=True, timeout=120,
                          env={'PYTHONPATH': repo_root, 'PATH': '/usr/bin:/bin'})


def _our_checkpoint(path):
    state, _ = convert_state_dict(original.resnest50().state_dict())
    torch.save(dict(state_dict=state, meta=dict()), path)
    return state


@pytest.mark.slow
def test_cli_writes_what_mmpretrain_loads(repo_root, tmp_path):
    src, dst = tmp_path / 'ours.pth', tmp_path / 'mmpretrain.pth'
    state = _our_checkpoint(src)
    result = _run(repo_root, str(src), str(dst))
    assert result.returncode == 0, result.stderr
    assert '(mmpretrain, classifier: 1000 classes)' in result.stdout
    assert (tmp_path / 'mmpretrain.pth.sha256').is_file()  # written with its digest
    # mmpretrain's own API, its own config, strict loading (a missing key would warn and stay
    # random: compare a stem weight and the head)
    cfg = Config.fromfile('configs/_base_/models/resnest50.py')
    cfg.model.backbone = dict(type='mmpretrain.ResNeSt', depth=50)
    model = get_model(Config(dict(model=cfg.model)), pretrained=str(dst))
    assert torch.equal(model.backbone.stem[0].conv.weight, state['backbone.conv1.0.weight'])
    assert torch.equal(model.backbone.layer1[0].downsample[0].weight,
                       state['backbone.layer1.0.downsample.1.weight'])
    assert torch.equal(model.head.fc.weight, state['head.fc.weight'])


@pytest.mark.slow
def test_cli_writes_a_plain_state_dict_for_the_original(repo_root, tmp_path):
    src, dst = tmp_path / 'ours.pth', tmp_path / 'official.pth'
    _our_checkpoint(src)
    result = _run(repo_root, str(src), str(dst), '--to', 'official')
    assert result.returncode == 0, result.stderr
    original.resnest50().load_state_dict(torch.load(dst, weights_only=True), strict=True)


@pytest.mark.slow
def test_cli_refuses_a_foreign_layout(repo_root, tmp_path):
    src = tmp_path / 'official.pth'
    torch.save(original.resnest50().state_dict(), src)
    result = _run(repo_root, str(src), str(tmp_path / 'out.pth'))
    assert result.returncode == 2
    assert 'in the official layout, not resnest_mm' in result.stderr
    assert 'Traceback' not in result.stderr
