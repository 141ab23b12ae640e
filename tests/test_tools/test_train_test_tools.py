"""tools/train.py, tools/test.py, dist_train.sh and dist_test.sh as a user runs them.

A 2-class folder of real JPEGs, the digits config, one epoch; the distributed runs use 2
processes on gloo through the real launch scripts.
"""
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from tests.helpers.images import write_image_folder

pytestmark = pytest.mark.slow  # subprocesses or whole runs

CONFIG = 'configs/resnest50_1xb32_digits.py'


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _env(repo_root):
    return dict(os.environ, PYTHONPATH=repo_root, PORT=_free_port(), OMP_NUM_THREADS='1',
                PYTHON=sys.executable)


def _run(repo_root, cmd, timeout=400):
    result = subprocess.run(cmd, cwd=repo_root, env=_env(repo_root), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return result


def _options(data_root):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
            'train_dataloader.num_workers=1', 'val_dataloader.num_workers=1',
            'test_dataloader.num_workers=1', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def trained(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp('e2e')
    data = root / 'data'
    for split in ('train', 'val'):
        write_image_folder(str(data / split), ['cat', 'dog'], per_class=6, size=40)
    work = root / 'train'
    _run(repo_root, [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
                     *_options(data)])
    with open(work / 'last_checkpoint') as f:
        checkpoint = f.read().strip()
    return dict(root=root, data=data, work=work, checkpoint=checkpoint)


def test_train_writes_checkpoint_and_summary(trained):
    assert os.path.isfile(trained['checkpoint'])
    summary = json.loads((trained['work'] / 'summary.json').read_text())
    assert summary['mode'] == 'train' and summary['epochs'] == 1 and summary['iters'] == 3
    assert summary['fps'] > 0 and summary['world_size'] == 1 and summary['amp'] is False
    assert summary['batch_size_per_device'] == 4 and summary['device'] in ('cpu', 'cuda')
    assert 0 <= summary['accuracy/top1'] <= 100 and summary['config'].endswith(CONFIG)


def _top1(stdout_and_err: str) -> float:
    found = re.findall(r'accuracy/top1: ([0-9.]+)', stdout_and_err)
    assert found, stdout_and_err[-2000:]
    return float(found[-1])


def test_test_tool_and_dist_test_agree(trained, repo_root):
    single = trained['root'] / 'test1'
    out = trained['root'] / 'preds.pkl'
    r1 = _run(repo_root, [sys.executable, 'tools/test.py', CONFIG, trained['checkpoint'],
                          '--work-dir', str(single), '--out', str(out),
                          *_options(trained['data'])])
    summary = json.loads((single / 'summary.json').read_text())
    assert summary['mode'] == 'test' and summary['epochs'] == 1
    assert summary['checkpoint'] == trained['checkpoint'] and summary['fps'] > 0
    assert os.path.isfile(out)
    double = trained['root'] / 'test2'
    r2 = _run(repo_root, ['bash', 'tools/dist_test.sh', CONFIG, trained['checkpoint'], '2',
                          '--work-dir', str(double), *_options(trained['data'])])
    dist_summary = json.loads((double / 'summary.json').read_text())
    assert dist_summary['world_size'] == 2
    assert dist_summary['accuracy/top1'] == summary['accuracy/top1']
    assert _top1(r1.stdout + r1.stderr) == _top1(r2.stdout + r2.stderr)


def test_dist_train_two_processes_on_gloo(trained, repo_root):
    work = trained['root'] / 'dist_train'
    _run(repo_root, ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work),
                     *_options(trained['data'])])
    summary = json.loads((work / 'summary.json').read_text())
    # 12 images, 6 per process; batches of 4 and the config's drop_last=True (no incomplete
    # last batch): 1 iteration each
    assert summary['world_size'] == 2 and summary['iters'] == 1


def test_resume_without_path_continues(trained, repo_root, tmp_path):
    import shutil
    work = tmp_path / 'resumed'
    shutil.copytree(trained['work'], work)
    options = _options(trained['data'])
    options[options.index('train_cfg.max_epochs=1')] = 'train_cfg.max_epochs=2'
    _run(repo_root, [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
                     '--resume', *options])
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['epochs'] == 2 and summary['iters'] == 6


def _python_without_torch():
    import shutil

    for name in ('python3', 'python'):
        for folder in ('/usr/bin', '/usr/local/bin'):
            path = shutil.which(name, path=folder)
            if path and subprocess.run([path, '-c', 'import torch'],
                                       capture_output=True).returncode != 0:
                return path
    return None


def test_torchrun_falls_back_to_the_checkouts_venv(repo_root, tmp_path):
    """After `make`, nothing activated: `python` has no torch, the checkout's .venv has."""
    bare = _python_without_torch()
    venv_python = os.path.join(repo_root, '.venv', 'bin', 'python')
    if bare is None or not os.path.exists(venv_python):
        pytest.skip('needs a python without torch and this checkout\'s .venv')
    shims = tmp_path / 'bin'
    shims.mkdir()
    (shims / 'python').symlink_to(bare)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(PATH=f'{shims}:{env["PATH"]}', PORT=_free_port(), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', 'tools/torchrun.sh', 'tests/helpers/which_python.py', '1'],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'PYTHON {os.path.join(repo_root, ".venv", "bin")}' in proc.stdout
    env['PYTHON'] = bare  # chosen explicitly, without torch: one sentence, exit 2
    proc = subprocess.run(['bash', 'tools/torchrun.sh', 'tests/helpers/which_python.py', '1'],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'cannot import torch' in proc.stderr and 'Traceback' not in proc.stderr
