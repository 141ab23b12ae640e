"""tools/model_converters/resnest_to_mm.py as a user runs it."""
import subprocess
import sys

import pytest
import timm
import torch

pytestmark = pytest.mark.slow  # subprocesses or whole runs


def _run(repo_root, *args):
    return subprocess.run([sys.executable, 'tools/model_converters/resnest_to_mm.py', *args],
                          cwd=repo_root, capture_output=True, text=True, timeout=120,
                          env={'PYTHONPATH': repo_root, 'PATH': '/usr/bin:/bin'})


def test_cli_converts_timm_checkpoint(repo_root, tmp_path):
    src, dst = tmp_path / 'timm.pth', tmp_path / 'mm.pth'
    torch.save(timm.create_model('resnest50d').state_dict(), src)
    result = _run(repo_root, str(src), str(dst), '--format', 'timm')
    assert result.returncode == 0, result.stderr
    assert 'classifier: 1000 classes' in result.stdout
    state = torch.load(dst, weights_only=True)['state_dict']
    assert (tmp_path / 'mm.pth.sha256').is_file()  # written with its digest
    assert 'backbone.layer4.2.conv2.fc2.weight' in state and 'head.fc.weight' in state


def test_cli_reports_bad_input(repo_root, tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, bad)
    result = _run(repo_root, str(bad), str(tmp_path / 'out.pth'))
    assert result.returncode == 2
    assert 'not a ResNeSt' in result.stderr and 'Traceback' not in result.stderr
