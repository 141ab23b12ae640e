"""tools/train.py --decode-on-device: a real short run decodes on the 'device' (the CPU here),
and a hostile JPEG in the training folder is counted and listed, not fatal."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.images import write_image_folder


@pytest.mark.slow
def test_a_decode_on_device_run_lists_a_hostile_file(repo_root, tmp_path):
    for split in ('train', 'val'):
        write_image_folder(str(tmp_path / 'data' / split), ['a', 'b'], per_class=4, size=32)
    bad = tmp_path / 'data' / 'train' / 'a' / 'zz_bad.jpg'
    good = (tmp_path / 'data' / 'train' / 'a').iterdir().__next__().read_bytes()
    data = bytearray(good)
    data[data.index(b'\xff\xda') + 4] = 9  # an impossible scan header behind a sound header
    bad.write_bytes(bytes(data))
    work = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/resnest50_1xb32_digits.py', '--work-dir',
         str(work), '--decode-on-device', '--no-validate', '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path / "data"}', 'train_cfg.max_epochs=1',
         'train_dataloader.batch_size=9', 'default_hooks.unreadable_images.max_fraction=0.5'],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'ReadForDeviceDecode' in result.stdout + result.stderr
    listed = (work / 'unreadable_images.txt').read_text()
    assert str(bad) in listed and listed.count('\n') == 1
    assert np.isfinite(json.loads((work / 'summary.json').read_text())['iters'])
