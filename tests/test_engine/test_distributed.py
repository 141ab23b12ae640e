"""Real 2-process gloo runs (torchrun) against 1-process runs, a rank that dies, a busy port.

Equivalence (same global batch of 8: 2 x 4 against 1 x 8, same initial weights, same sample
order): without BatchNorm, the mean of the two ranks' losses equals the 1-process loss at every
iteration and the final weights agree to float rounding (DDP averages gradients). With plain
BatchNorm each rank normalises its half-batch with its own statistics, so losses differ by the
BN noise (the test bounds it, the README gives the measured size); SyncBatchNorm
(``sync_bn='torch'``) computes the statistics over the global batch, but PyTorch implements it
for CUDA/NPU only, so on CPU the Runner refuses it (shown below).
"""
import os
import re
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # subprocesses or whole runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = os.path.join(ROOT, 'tests/helpers/toy_runner.py')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')


def _torchrun(work_dir, *extra, timeout=240):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           f'--master_port={_free_port()}', TOY, str(work_dir), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def _single(work_dir, *extra):
    cmd = [sys.executable, TOY, str(work_dir), '--launcher', 'none', *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env())


def _trace(path):
    return {int(i): (float(lr), float(loss))
            for i, lr, loss in (line.split() for line in open(path))}


@pytest.mark.parametrize('norm', ['none', 'bn'])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, norm):
    two = _torchrun(tmp_path / 'two', '--batch', '4', '--trace', '--norm', norm)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _single(tmp_path / 'one', '--batch', '8', '--trace', '--norm', norm)
    assert one.returncode == 0, one.stderr[-3000:]
    single = _trace(tmp_path / 'one' / 'trace-rank0.txt')
    ranks = [_trace(tmp_path / 'two' / f'trace-rank{r}.txt') for r in (0, 1)]
    assert sorted(single) == sorted(ranks[0]) == sorted(ranks[1]) == list(range(1, 5))
    worst = 0.
    for it, (lr, loss) in single.items():
        assert ranks[0][it][0] == ranks[1][it][0] == lr  # the same LR at every iteration
        mean = (ranks[0][it][1] + ranks[1][it][1]) / 2
        worst = max(worst, abs(mean - loss))
    print(f'norm={norm}: max |mean of 2 ranks - 1 process| loss difference {worst:.3g}')
    if norm == 'none':
        assert worst < 1e-6
    else:  # per-rank batch statistics: a real but bounded difference
        assert worst < 0.5
    weights = [float(m) for m in re.findall(r'RANK \d OK (-?\d+\.\d{6})', two.stdout)]
    assert len(weights) == 2 and weights[0] == weights[1]
    single_weights = float(re.search(r'RANK 0 OK (-?\d+\.\d{6})', one.stdout).group(1))
    if norm == 'none':
        assert abs(single_weights - weights[0]) < 1e-5


def test_syncbn_on_cpu_is_refused_with_a_reason(tmp_path):
    result = _torchrun(tmp_path, '--norm', 'syncbn')
    assert result.returncode != 0
    assert 'SyncBatchNorm' in result.stderr or 'SyncBatchNorm' in result.stdout


def test_when_one_rank_dies_the_others_stop_within_a_minute(tmp_path):
    start = time.monotonic()
    result = _torchrun(tmp_path, '--die-rank', '1', '--die-at', '2', timeout=300)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 60, f'the surviving rank hung for {elapsed:.0f} s'
    assert 'exitcode  : 3' in result.stderr and 'local_rank: 1' in result.stderr


def test_a_busy_master_port_gets_one_sentence(repo_root):
    with socket.socket() as busy:
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            ['bash', 'tools/dist_train.sh', 'configs/resnest50_1xb32_digits.py', '2'],
            cwd=repo_root, env=dict(_env(), PORT=str(port), PYTHON=sys.executable),
            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert (f'tools/torchrun.sh: port {port} is already in use on this machine '
            f'(Address already in use), perhaps by another training job: choose a free one, '
            f'e.g. PORT={port + 1}') in result.stderr
