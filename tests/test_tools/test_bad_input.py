"""Bad input through the tools as a user types them: one sentence on stderr, exit status 2, no
traceback. (The sentences themselves are tested where they are made; this is the delivery.)"""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers.images import write_image_folder

pytestmark = pytest.mark.slow  # subprocesses or whole runs

CONFIG = 'configs/resnest50_1xb32_digits.py'


def _tool(repo_root, tool, *args, env=None):
    result = subprocess.run([sys.executable, f'tools/{tool}.py', *args], cwd=repo_root,
                            env=dict(os.environ, PYTHONPATH=repo_root, **(env or {})),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    (line, ) = [line for line in result.stderr.splitlines() if ': error: ' in line]
    return line


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad_input')
    for split in ('train', 'val'):
        write_image_folder(str(root / split), ['a', 'b'], size=16)
    return root


def test_unknown_cfg_option(repo_root, data, tmp_path):
    line = _tool(repo_root, 'train', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                 f'train_dataloader.dataset.data_root={data}', 'randomness.sed=3')
    assert line.startswith("tools/train.py: error: --cfg-options randomness.sed=")  \
        or line.startswith("tools/train.py: error: --cfg-options randomness.sed:")
    assert "did you mean 'seed'" in line


def test_missing_data_root(repo_root, tmp_path):
    line = _tool(repo_root, 'train', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                 f'train_dataloader.dataset.data_root={tmp_path}/none')
    assert f'the image folder {tmp_path}/none/train does not exist' in line


def test_checkpoint_of_another_kind(repo_root, data, tmp_path):
    bad = tmp_path / 'not_weights.pth'
    torch.save({'optimizer_only': {'lr': 0.1}}, bad)
    line = _tool(repo_root, 'test', CONFIG, str(bad), '--work-dir', str(tmp_path),
                 '--cfg-options', f'test_dataloader.dataset.data_root={data}')
    assert line.startswith('tools/test.py: error:') and 'resnest_to_mm.py' in line
