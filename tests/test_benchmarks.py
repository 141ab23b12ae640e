"""The benchmarks run (tiny sizes) and print their ratios; their goals are not asserted here."""
import os
import re
import subprocess
import sys


def test_data_pipeline_benchmark_prints_ratios(repo_root):
    result = subprocess.run([sys.executable, 'benchmarks/data_pipeline.py', '--images', '4',
                             '--repeats', '1'], cwd=repo_root, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if 'ratio' in line]
    assert [line.split(':')[0].strip() for line in lines] == ['train', 'val']


def _run(repo_root, *cmd):
    result = subprocess.run([sys.executable, *cmd], cwd=repo_root, capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_model_step_benchmark_prints_ratios(repo_root):
    out = _run(repo_root, 'benchmarks/model_step.py', '--batch', '2', '--size', '32',
               '--repeats', '1', '--models', 'ours', 'original')
    assert 'ratio ours/original nchw:' in out and 'ratio ours/original channels_last:' in out
    assert 'ratio ours best / fastest peer best (original):' in out
    assert re.search(r'paired per repetition \((nchw|channels_last) / original '
                     r'(nchw|channels_last)\): median [\d.]+ over 1', out)
    assert 'ratio ours channels_last / ours nchw:' in out


def test_runner_overhead_benchmark_prints_the_ratio(repo_root):
    out = _run(repo_root, 'benchmarks/runner_overhead.py', '--iters', '4', '--warmup', '1',
               '--batch', '2', '--size', '32', '--repeats', '1')
    assert re.search(r'runner [\d.]+ ms/iter, plain loop [\d.]+ ms/iter, ratio [\d.]+', out)
    assert re.search(r'paired per repeat: median [\d.]+, range [\d.]+-[\d.]+', out)


def test_benchmark_tool_says_what_bounds_this_machine(repo_root, tmp_path):
    from tests.helpers.images import write_image_folder
    for split in ('train', 'val'):
        write_image_folder(str(tmp_path / split), ['a', 'b'], per_class=4, size=32)
    out = _run(repo_root, 'tools/benchmark.py', 'configs/resnest50_1xb32_digits.py', '--iters',
               '2', '--warmup', '1', '--cfg-options', f'train_dataloader.dataset.data_root='
               f'{tmp_path}', f'val_dataloader.dataset.data_root={tmp_path}',
               'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2')
    assert re.search(r'synthetic data on the device: train [\d.]+ img/s \(FPS\), eval [\d.]+', out)
    assert re.search(r'train_dataloader \(2 workers\): [\d.]+ img/s -> train on this machine is '
                     r'(input|compute)-bound', out)
    assert 'val_dataloader (2 workers)' in out
    synthetic = _run(repo_root, 'tools/benchmark.py', 'configs/resnest50_1xb32_digits.py',
                     '--synthetic', '--amp', '--iters', '1', '--warmup', '0', '--cfg-options',
                     'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2')
    assert 'synthetic data on the device' in synthetic and 'dataloader' not in synthetic


def test_benchmark_amp_is_trainings_amp(repo_root):
    """The ImageNet recipe's ApexAmpHook (native fallback here) and --amp: the benchmark's
    train step runs under the autocast dtype training would use, seen inside the step."""
    from resnest_mm import device
    expected = 'bfloat16' if device.device_type() == 'cpu' else 'float16'
    options = ['--synthetic', '--iters', '1', '--warmup', '0', '--cfg-options',
               'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
               'train_dataloader.dataset.pipeline.0.scale=64']
    hook = _run(repo_root, 'tools/benchmark.py', 'configs/resnest50_8xb128_in1k.py', *options)
    assert f'autocast seen in the train step: {expected}' in hook
    off = _run(repo_root, 'tools/benchmark.py', 'configs/resnest50_8xb128_in1k.py', *options,
               'default_hooks.apex_amp=None')
    assert 'autocast seen in the train step: float32 (no autocast)' in off


def test_timm_peer_config_runs_in_the_same_tool(repo_root):
    out = _run(repo_root, 'tools/benchmark.py', 'configs/benchmarks/timm-resnest50d_8xb128_in1k.py',
               '--synthetic', '--channels-last', '--iters', '1', '--warmup', '0',
               '--cfg-options', 'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2')
    assert 'channels_last=True' in out and 'synthetic data on the device: train' in out
