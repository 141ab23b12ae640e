"""tools/train.py --channels-last --prof: a real short run writes the profile."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.images import write_image_folder

pytestmark = pytest.mark.slow  # subprocesses or whole runs


def test_channels_last_and_profiler_run(repo_root, tmp_path):
    for split in ('train', 'val'):
        write_image_folder(str(tmp_path / 'data' / split), ['a', 'b'], per_class=4, size=32)
    work = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/resnest50_1xb32_digits.py', '--work-dir',
         str(work), '--channels-last', '--prof', '2', '--no-validate', '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path / "data"}', 'train_cfg.max_epochs=1',
         'train_dataloader.batch_size=4'],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    trace = json.loads((work / 'trace.json').read_text())
    assert any('convolution' in e.get('name', '') for e in trace['traceEvents'])
    assert 'Self CPU' in result.stdout  # the profiler's table of the slowest operators
    assert json.loads((work / 'summary.json').read_text())['iters'] == 2
