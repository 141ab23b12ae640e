"""The tools after training, run as users run them: infer, export, analyze_logs, get_flops."""
import os
import subprocess
import sys

import pytest

from tests.helpers.tiny_run import CONFIG, DIGIT_NAMES

pytestmark = pytest.mark.slow  # subprocesses or whole runs


def _run(repo_root, *args):
    proc = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True,
                          text=True, timeout=300)
    return proc


def test_infer_prints_top5_names_and_scores(repo_root, tiny_run, tmp_path):
    images = tiny_run['images'][:2]
    out = tmp_path / 'pred.json'
    proc = _run(repo_root, 'tools/infer.py', *images, '--config', CONFIG, '--checkpoint',
                tiny_run['checkpoint'], '--out', str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index(images[0])
    top = lines[start + 1:start + 6]
    assert [line.split('.')[0].strip() for line in top] == ['1', '2', '3', '4', '5']
    assert all(line.split()[1] in DIGIT_NAMES for line in top)
    assert os.path.isfile(out)


def test_infer_names_a_missing_image(repo_root, tiny_run):
    proc = _run(repo_root, 'tools/infer.py', 'nowhere.jpg', '--config', CONFIG,
                '--checkpoint', tiny_run['checkpoint'])
    assert proc.returncode == 2
    assert 'nowhere.jpg' in proc.stderr and 'Traceback' not in proc.stderr


def test_export_prints_the_check(repo_root, tiny_run, tmp_path):
    out = str(tmp_path / 'm.pt')
    proc = _run(repo_root, 'tools/deploy/export.py', CONFIG, tiny_run['checkpoint'],
                '--format', 'torchscript', '--out', out, '--check-batches', '1')
    assert proc.returncode == 0, proc.stderr
    assert 'max abs diff 0 ' in proc.stdout
    assert os.path.isfile(out) and os.path.isfile(out + '.json')


@pytest.mark.parametrize('keys', [['loss', 'lr', 'accuracy/top1', 'fps']])
def test_analyze_logs_plot_curve(repo_root, tiny_run, tmp_path, keys):
    out = str(tmp_path / 'curves.png')
    proc = _run(repo_root, 'tools/analysis_tools/analyze_logs.py', 'plot_curve',
                tiny_run['log_json'], '--keys', *keys, '--out', out)
    assert proc.returncode == 0, proc.stderr
    assert open(out, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_get_flops(repo_root):
    proc = _run(repo_root, 'tools/analysis_tools/get_flops.py', 'configs/resnest50_8xb128_in1k.py')
    assert proc.returncode == 0, proc.stderr
    assert 'parameters: 27.483M (27,483,240)' in proc.stdout
    assert 'FLOPs: 5.402G' in proc.stdout
