"""Killed with SIGKILL mid-epoch, or halfway through writing a checkpoint, a run resumed with
``resume=True`` ends with the same weights, the same LR and the same loss at every iteration as
an uninterrupted run (CPU, deterministic mode, 2 data-loader workers, random augmentation)."""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers.images import write_image_folder

pytestmark = pytest.mark.slow  # subprocesses or whole runs

SCRIPT = 'tests/helpers/resume_run.py'


def _run(repo_root, data, work_dir, *flags):
    return subprocess.run([sys.executable, SCRIPT, str(data), str(work_dir), *flags],
                          cwd=repo_root, capture_output=True, text=True, timeout=600)


def _trace(work_dir):
    rows = [line.split() for line in open(os.path.join(work_dir, 'trace.txt'))]
    return {int(i): (lr, loss) for i, lr, loss in rows}  # a resumed iteration overwrites


def _weights(work_dir):
    return torch.load(os.path.join(work_dir, 'final.pth'), map_location='cpu')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume_data')
    write_image_folder(str(root / 'train'), ['a', 'b'], per_class=12, size=48)
    write_image_folder(str(root / 'val'), ['a', 'b'], per_class=2, size=48, seed=1)
    return root


@pytest.fixture(scope='module')
def uninterrupted(data, repo_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    result = _run(repo_root, data, work_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    yield _trace(work_dir), _weights(work_dir)


def _assert_same_run(work_dir, uninterrupted):
    trace, weights = uninterrupted
    assert _trace(work_dir) == trace  # LR and loss, iteration by iteration, bit for bit
    resumed = _weights(work_dir)
    assert resumed.keys() == weights.keys()
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)


def test_sigkill_mid_epoch_then_resume_ends_identical(data, repo_root, tmp_path, uninterrupted):
    killed = _run(repo_root, data, tmp_path, '--kill-at', '10')
    assert killed.returncode == -9
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_8.pth')
    resumed = _run(repo_root, data, tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming epoch 2 at batch 3/6: 2 batches skipped' in resumed.stdout
    _assert_same_run(tmp_path, uninterrupted)


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(data, repo_root, tmp_path,
                                                                   uninterrupted):
    # saves: iter_4, epoch_1, iter_8 <- killed halfway through writing this one
    killed = _run(repo_root, data, tmp_path, '--kill-in-save', '3')
    assert killed.returncode == -9
    parts = list(tmp_path.glob('.iter_8.pth.*.part'))  # the half-written temporary file
    assert len(parts) == 1 and not (tmp_path / 'iter_8.pth').exists()
    latest = (tmp_path / 'last_checkpoint').read_text()
    assert latest == str(tmp_path / 'epoch_1.pth')
    torch.load(latest, map_location='cpu', weights_only=False)  # complete and readable
    resumed = _run(repo_root, data, tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'removed {parts[0]}: a file whose writing was interrupted' in resumed.stdout
    assert not parts[0].exists()
    _assert_same_run(tmp_path, uninterrupted)
    kept = sorted(p.name for p in tmp_path.glob('*.pth') if p.name != 'final.pth')
    assert kept == ['epoch_2.pth', 'iter_12.pth']  # max_keep_ckpts=2
