"""The benchmarks run (tiny sizes) and print their ratios; their goals are not asserted here."""
import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_data_pipeline_benchmark_prints_ratios(repo_root):
    result = subprocess.run([sys.executable, 'benchmarks/data_pipeline.py', '--images', '4',
                             '--repeats', '1'], cwd=repo_root, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if 'ratio' in line]
    assert [line.split(':')[0].strip() for line in lines] == ['train', 'val']
    handoff = result.stdout.split('handing each output')[1].splitlines()[1:3]
    assert [re.match(r'  (\w+): ours [\d.]+, torchvision [\d.]+$', line).group(1)
            for line in handoff] == ['train', 'val']


def _run(repo_root, *cmd):
    result = subprocess.run([sys.executable, *cmd], cwd=repo_root, capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_model_step_benchmark_prints_ratios(repo_root):
    out = _run(repo_root, 'benchmarks/model_step.py', '--batch', '2', '--size', '32',
               '--repeats', '1', '--models', 'ours', 'original')
    assert 'ratio ours/original nchw:' in out and 'ratio ours/original channels_last:' in out
    assert 'ratio ours best / fastest peer best (original):' in out
    assert re.search(r'paired per repetition \((nchw|channels_last) / original '
                     r'(nchw|channels_last)\): median [\d.]+ over 1', out)
    assert 'ratio ours channels_last / ours nchw:' in out


@pytest.mark.slow
def test_runner_overhead_benchmark_prints_the_ratio(repo_root):
    out = _run(repo_root, 'benchmarks/runner_overhead.py', '--iters', '4', '--warmup', '1',
               '--batch', '2', '--size', '32', '--repeats', '1')
    assert re.search(r'runner [\d.]+ ms/iter, plain loop [\d.]+ ms/iter, ratio [\d.]+', out)
    assert re.search(r'paired per repeat: median [\d.]+, range [\d.]+-[\d.]+', out)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_timm_peer_config_runs_in_the_same_tool(repo_root):
    out = _run(repo_root, 'tools/benchmark.py', 'configs/benchmarks/timm-resnest50d_8xb128_in1k.py',
               '--synthetic', '--channels-last', '--iters', '1', '--warmup', '0',
               '--cfg-options', 'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2')
    assert 'channels_last=True' in out and 'synthetic data on the device: train' in out


def _gpu_check_module(repo_root):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'gpu_check', os.path.join(repo_root, 'benchmarks', 'gpu_check.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu_keeps_its_budget(repo_root, tmp_path):
    """benchmarks/gpu_check.sh with tiny settings on this CPU: versions, one parity test, the
    bf16 benchmark pairs until the budget no longer fits one (the rest named as skipped), one
    table with the autocast each row saw, the ratios, and no more than two files under $OUT."""
    out = tmp_path / 'out'
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, PARITY_DEVICE='cpu',
               PARITY_K='50-timm', BATCHES='2', MODES='eager compile', LAYOUTS='channels_last',
               SIZE='32', ITERS='1', WARMUP='0', BUDGET_S='80', MIN_STEP_S='20',
               MIN_COMPILE_S='90', INPUT_IMAGES='0')
    result = subprocess.run(['bash', 'benchmarks/gpu_check.sh'], cwd=repo_root, env=env,
                            capture_output=True, text=True, timeout=150)
    text = result.stdout
    assert result.returncode == 0, text[-3000:] + result.stderr[-3000:]
    assert re.search(r'torch 2\.\S+ .*mmengine 0\.10\.7 .*mmpretrain 1\.2\.0 .*device cpu', text)
    assert 'parity on cpu: 1 passed, 21 deselected' in text
    assert '== 2b. input-bound: skipped (INPUT_IMAGES=0)' in text
    assert re.search(r'who +batch mode +layout +train +eval +autocast +status', text)
    for who in ('ours', 'timm'):  # the eager pair fits: it needs 40 s of 80
        assert re.search(rf'^{who} +2 eager +channels_last +[\d.]+ +[\d.]+ +bfloat16 +ok$', text,
                         re.M), text
    assert re.search(r'bf16 check: (\d+) of \1 rows measured with bfloat16 autocast', text)
    assert re.search(r'^batch 2 eager channels_last: ours [\d.]+, timm [\d.]+ img/s, ratio '
                     r'[\d.]+$', text, re.M)
    # the compiled pair needs twice its 90 s estimate, more than the whole budget: skipped, named
    skipped = re.search(r'^skipped for lack of time \(BUDGET_S=80 s\): (.+)$', text, re.M)
    assert skipped and skipped.group(1) == ('ours b2 compile channels_last, '
                                            'timm b2 compile channels_last'), text
    assert re.search(r'ours b2 compile channels_last: skipped \(\d+ s of the budget left, '
                     r'180 s needed\)', text)
    files = sorted(os.listdir(out))
    assert files == ['gpu_check.json', 'gpu_check.log'] and len(files) <= 8
    import json
    saved = json.loads((out / 'gpu_check.json').read_text())
    assert saved['skipped'] == skipped.group(1).split(', ')
    assert {row['autocast'] for row in saved['rows']} == {'bfloat16'}
    assert saved['elapsed_s'] <= 80 + 5
    assert 'tools/benchmark.py configs/resnest50_8xb128_in1k.py --synthetic --amp --amp-dtype ' \
        'bfloat16' in (out / 'gpu_check.log').read_text()


def test_gpu_check_marks_rows_not_in_bf16(repo_root):
    """A benchmark whose train step saw no bf16 autocast is marked NOT bf16, never enters the
    ratios, and a failed or timed-out step is named as such."""
    check = _gpu_check_module(repo_root)
    line = ('  optimizer wrapper {}, autocast seen in the train step: {}\n'
            '  synthetic data on the device: train {} img/s (FPS), eval 9.0 img/s (the compute '
            'ceiling)\n')
    rows = [dict(who='ours', batch=128, mode='eager', layout='nchw', rc=0,
                 **check.parse_benchmark(line.format('AmpOptimWrapper', 'bfloat16', 3000))),
            dict(who='timm', batch=128, mode='eager', layout='nchw', rc=0,
                 **check.parse_benchmark(line.format('OptimWrapper', 'float32 (no autocast)',
                                                     2000))),
            dict(who='ours', batch=256, mode='eager', layout='nchw', rc=0,
                 **check.parse_benchmark(line.format('AmpOptimWrapper', 'bfloat16', 3100))),
            dict(who='timm', batch=256, mode='eager', layout='nchw', rc=0,
                 **check.parse_benchmark(line.format('AmpOptimWrapper', 'float16', 2500))),
            dict(who='ours', batch=128, mode='compile', layout='nchw', rc=None,
                 **check.parse_benchmark('')),
            dict(who='timm', batch=128, mode='compile', layout='nchw', rc=1,
                 **check.parse_benchmark('Traceback ...'))]
    assert rows[0]['train'] == 3000.0 and rows[1]['autocast'] == 'float32 (no autocast)'
    assert [check.row_status(row) for row in rows] == [
        'ok', 'NOT bf16', 'ok', 'NOT bf16', 'timed out', 'failed (rc 1)']
    assert check.ratios(rows) == []
    text = check.table(dict(rows=rows, budget_s=420, skipped=[]))
    assert re.search(r'^timm +128 eager +nchw +2000\.0 +9\.0 +float32 \(no autocast\) +NOT bf16$',
                     text, re.M)
    assert 'bf16 check: 2 of 6 rows measured with bfloat16 autocast seen in the train step; ' \
        '2 NOT bf16 (left out of the ratios); 2 failed or timed out' in text
    assert '(none: no pair of bf16 rows)' in text and 'no step skipped' in text
    rows[1].update(autocast='bfloat16')
    assert [q['label'] for q in check.ratios(rows)] == [
        'batch 128 eager nchw', "batch 128 ours' best (eager nchw) / timm's best eager (nchw)"]


def test_input_bound_benchmark_prints_both_decode_paths(repo_root):
    out = _run(repo_root, 'benchmarks/input_bound.py', '--images', '6', '--batch', '3',
               '--repeats', '1', '--device', 'cpu')
    for name in ('cpu decode', 'device decode'):
        assert re.search(rf'^  {name}: [\d.]+ img/s, [\d.]+ CPU-ms/img$', out, re.M), out
    import json
    found = json.loads(re.search(r'^INPUT_BOUND (.*)$', out, re.M).group(1))
    assert found['images'] == 6 and set(found['rows']) == {'cpu decode', 'device decode'}
    table = _gpu_check_module(repo_root).input_table(dict(input_bound=found))
    assert re.search(r'^device decode +[\d.]+ img/s +[\d.]+ CPU-ms/img$', table, re.M), table


def test_digits_decode_on_device_runs_the_same_recipe_twice(repo_root, monkeypatch):
    """benchmarks/digits_decode_on_device.py: the two commands it runs are tools/train.py's,
    equal but for --decode-on-device, with the schedule shortened alike (the trainings themselves
    take minutes: run the script by hand)."""
    import argparse
    import importlib.util

    from resnest_mm.frontends.cli import merge_train_args, train_parser
    from resnest_mm.frontends.config_loader import load_config
    spec = importlib.util.spec_from_file_location(
        'digits_decode_on_device',
        os.path.join(repo_root, 'benchmarks', 'digits_decode_on_device.py'))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(repo_root)
    args = argparse.Namespace(epochs=3, data='/data/digits', work_dir='/w', together=False)
    commands = {mode: script.train_command(mode, args) for mode in ('cpu', 'device')}
    assert commands['device'] == [c.replace('/w/cpu', '/w/device') for c in commands['cpu']] + \
        ['--decode-on-device']
    configs = {}
    for mode, command in commands.items():
        assert command[1] == 'tools/train.py'
        configs[mode] = merge_train_args(load_config(command[2]),
                                         train_parser().parse_args(command[2:]))
    for cfg in configs.values():
        assert cfg.train_cfg.max_epochs == 3 and cfg.param_scheduler[1].T_max == 2
        assert cfg.param_scheduler[1].end == 3
        assert cfg.val_dataloader.dataset.data_root == '/data/digits'
    pipelines = {mode: [step['type'].split('.')[-1] for step in
                        cfg.train_dataloader.dataset.pipeline] for mode, cfg in configs.items()}
    assert pipelines == {'cpu': ['LoadImageRobust', 'RandomResizedCrop', 'PackInputs'],
                         'device': ['ReadForDeviceDecode', 'PackInputs']}
    assert configs['device'].data_preprocessor.type.endswith('DecodeOnDevicePreprocessor')
    assert configs['cpu'].test_dataloader == configs['device'].test_dataloader
