"""The steps of ``benchmarks/gpu_check.sh`` on a GPU machine held for a few minutes, in a budget.

    BUDGET_S=420 python benchmarks/gpu_check.py      (gpu_check.sh installs the wheels first)

In order, each step's timeout being what is left of the budget (``BUDGET_S`` seconds, counted
from ``GPU_CHECK_START``, the start of ``gpu_check.sh``):

1. the versions (python, torch, CUDA, the GPU, mmengine, mmcv, mmpretrain, timm, resnest_mm) and
   an import of everything the steps need: if that fails, nothing else runs;
2. the parity tests on ``PARITY_DEVICE`` (``cuda``; ``skip`` to leave them out; ``PARITY_K`` a
   pytest ``-k`` selection), at most ``PARITY_MAX_S`` of the budget;
2b. ``benchmarks/input_bound.py``: ``INPUT_IMAGES`` (512; 0 skips it) real JPEGs from disk to
   the normalised batch on the GPU, the CPU decode path against decode-on-device (nvJPEG),
   img/s and CPU-ms per image, at most ``INPUT_MAX_S`` (90) of the budget;
3. ``tools/benchmark.py --synthetic --amp --amp-dtype bfloat16`` (the train step through the
   runner and optimizer wrapper training builds) for ours (``configs/resnest50_8xb128_in1k.py``)
   and timm's ``resnest50d`` in the same recipe
   (``configs/benchmarks/timm-resnest50d_8xb128_in1k.py``), both with ApexAmpHook dropped
   (``default_hooks.apex_amp=None``) so that ``--amp-dtype`` applies: for each batch of
   ``BATCHES`` (128 256), each mode of ``MODES`` (eager compile) and each layout of ``LAYOUTS``
   (channels_last, the tensor cores' layout, then nchw), in that nesting, ours and timm side by
   side: batch 128 eager, batch 128 compiled, then batch 256.

A pair (ours, timm) starts only when twice its estimate is left (the longer of the step's
minimum, ``MIN_STEP_S`` 20 s eager or ``MIN_COMPILE_S`` 90 s compiled, and what the last step of
that mode took), timm's half when one estimate is; the steps that do not fit are skipped, and
named. Each row's autocast dtype is read from the benchmark's own line (seen inside the train
step): a row not in bfloat16 is marked ``NOT bf16`` and left out of the ratios.

At the end one table (who, batch, mode, layout, train and eval img/s, autocast, status) and the
ratios ours / timm. Files under ``$OUT`` (``/tmp/gpu_check`` without it): ``gpu_check.log``
(every step's command and output) and ``gpu_check.json`` (versions, parity, rows, ratios,
skipped steps), rewritten after each step; nothing else.

Smaller settings try it on a CPU (tests/test_benchmarks.py does): ``PARITY_DEVICE=cpu
PARITY_K=50-timm BATCHES='2 4' MODES=eager SIZE=32 ITERS=1 WARMUP=0 BUDGET_S=80``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = 'configs/resnest50_8xb128_in1k.py'
TIMM = 'configs/benchmarks/timm-resnest50d_8xb128_in1k.py'
LOG_NAME, JSON_NAME = 'gpu_check.log', 'gpu_check.json'
MAX_OUT_FILES = 8  # keep $OUT small: a few files to copy back from the GPU machine
LOG_TAIL = 40_000  # characters of each step's output kept in the log

_VERSIONS = r'''
import json, platform, sys
from importlib import metadata
import torch
found = {'python': platform.python_version(), 'torch': torch.__version__,
         'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version()}
if torch.cuda.is_available():
    found['gpu'] = torch.cuda.get_device_name(0)
    found['capability'] = '.'.join(map(str, torch.cuda.get_device_capability(0)))
    found['bf16_supported'] = torch.cuda.is_bf16_supported()
for name in ('torchvision', 'timm', 'mmengine', 'mmcv-lite', 'mmpretrain', 'resnest'):
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
import mmcv, mmpretrain, resnest.torch, timm  # what the steps import
import resnest_mm  # its version check: RESNEST_MM_ALLOW_UNTESTED=1 lets another torch in
import resnest_mm.frontends.cli
from mmengine.utils.dl_utils import collect_env
from resnest_mm import device
collect_env()  # what every Runner logs first (nvcc, gcc, distutils): fails here, not 8 times
found.update(resnest_mm=resnest_mm.__version__, device=device.device_type())
print('VERSIONS ' + json.dumps(found))
'''


def _env_list(name: str, default: str) -> List[str]:
    return os.environ.get(name, default).split()


class Check:
    """The run: budget, steps, rows and the two files under ``$OUT``.

    Args:
        out_dir (str): Where the log and the JSON go.
        budget_s (float): Seconds for the whole check, counted from ``start``.
        start (float): ``time.time()`` when the check (the shell script) began.
    """

    def __init__(self, out_dir: str, budget_s: float, start: float) -> None:
        self.out_dir, self.budget_s, self.start = out_dir, budget_s, start
        os.makedirs(out_dir, exist_ok=True)
        for name in (LOG_NAME, JSON_NAME):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        self.result: Dict = dict(budget_s=budget_s, versions={}, parity=None, rows=[],
                                 ratios=[], skipped=[])

    def left(self) -> float:
        """Seconds of the budget still left."""
        return self.budget_s - (time.time() - self.start)

    def log(self, text: str) -> None:
        with open(os.path.join(self.out_dir, LOG_NAME), 'a') as f:
            f.write(text if text.endswith('\n') else text + '\n')

    def save(self) -> None:
        self.result['elapsed_s'] = round(time.time() - self.start, 1)
        self.result['ratios'] = ratios(self.result['rows'])
        path = os.path.join(self.out_dir, JSON_NAME)
        with open(path + '.tmp', 'w') as f:
            json.dump(self.result, f, indent=1)
        os.replace(path + '.tmp', path)

    def run(self, name: str, cmd: List[str], timeout: float,
            env: Optional[Dict[str, str]] = None) -> Dict:
        """Run one step in its own process group (a timeout ends compile workers too)."""
        began = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True,
                                env=dict(os.environ, **(env or {})))
        try:
            output, _ = proc.communicate(timeout=max(timeout, 1))
            rc: Optional[int] = proc.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # ended just now
                pass
            output, _ = proc.communicate()
            rc = None
        seconds = time.time() - began
        ended = f'timed out after {timeout:.0f} s' if rc is None else f'rc {rc}'
        self.log(f'##### {name}  ({seconds:.0f} s, {ended})\n$ {" ".join(cmd)}\n'
                 f'{output[-LOG_TAIL:]}')
        return dict(rc=rc, output=output, seconds=seconds)


def parse_benchmark(output: str) -> Dict:
    """The figures of one ``tools/benchmark.py --synthetic`` output: train/eval img/s, the
    optimizer wrapper and the autocast dtype it saw inside the train step (None when absent)."""
    rates = re.search(r'synthetic data on the device: train ([\d.]+) img/s \(FPS\), '
                      r'eval ([\d.]+) img/s', output)
    seen = re.search(r'optimizer wrapper (\S+), autocast seen in the train step: (.+)', output)
    return dict(train=float(rates.group(1)) if rates else None,
                eval=float(rates.group(2)) if rates else None,
                optim_wrapper=seen.group(1) if seen else None,
                autocast=seen.group(2).strip() if seen else None)


def row_status(row: Dict) -> str:
    """``ok`` only for a measured bfloat16 row; else what went wrong."""
    if row.get('rc') is None and row.get('train') is None:
        return 'timed out'
    if row.get('train') is None:
        return f'failed (rc {row.get("rc")})'
    if row.get('autocast') != 'bfloat16':
        return 'NOT bf16'
    return 'ok'


def ratios(rows: List[Dict]) -> List[Dict]:
    """ours / timm train img/s per (batch, mode, layout) where both rows are ``ok``, and ours'
    best / timm's best eager per batch (the goal's baseline)."""
    good = {(r['who'], r['batch'], r['mode'], r['layout']): r['train']
            for r in rows if row_status(r) == 'ok'}
    found = []
    for (who, batch, mode, layout), rate in good.items():
        peer = good.get(('timm', batch, mode, layout))
        if who == 'ours' and peer:
            found.append(dict(label=f'batch {batch} {mode} {layout}', ours=rate, timm=peer,
                              ratio=round(rate / peer, 3)))
    for batch in sorted({key[1] for key in good}):
        ours = {k: v for k, v in good.items() if k[0] == 'ours' and k[1] == batch}
        timm_eager = {k: v for k, v in good.items()
                      if k[0] == 'timm' and k[1] == batch and k[2] == 'eager'}
        if ours and timm_eager:
            best, peer = max(ours, key=ours.get), max(timm_eager, key=timm_eager.get)
            found.append(dict(label=f"batch {batch} ours' best ({best[2]} {best[3]}) / timm's "
                                    f'best eager ({peer[3]})',
                              ours=ours[best], timm=timm_eager[peer],
                              ratio=round(ours[best] / timm_eager[peer], 3)))
    return found


def table(result: Dict) -> str:
    """The table of img/s, the ratios and the skipped steps, as printed at the end."""
    def fmt(value: Optional[float]) -> str:
        return '-' if value is None else f'{value:.1f}'

    lines = ['== images/s (synthetic batches on the device; train = forward, backward and '
             'optimizer step)',
             f'{"who":<5} {"batch":>5} {"mode":<8} {"layout":<14} {"train":>9} {"eval":>9} '
             f'{"autocast":<22} status']
    for r in result['rows']:
        lines.append(f'{r["who"]:<5} {r["batch"]:>5} {r["mode"]:<8} {r["layout"]:<14} '
                     f'{fmt(r["train"]):>9} {fmt(r["eval"]):>9} {str(r["autocast"]):<22} '
                     f'{row_status(r)}')
    states = [row_status(r) for r in result['rows']]
    lines.append(f'bf16 check: {states.count("ok")} of {len(states)} rows measured with '
                 'bfloat16 autocast seen in the train step'
                 + (f'; {states.count("NOT bf16")} NOT bf16 (left out of the ratios)'
                    if 'NOT bf16' in states else '')
                 + (f'; {len(states) - states.count("ok") - states.count("NOT bf16")} failed or '
                    'timed out' if set(states) - {'ok', 'NOT bf16'} else ''))
    lines.append('== ratios ours / timm (train img/s, bf16 rows only; goal: >= 1.5 against timm '
                 'eager)')
    for q in ratios(result['rows']):
        lines.append(f'{q["label"]}: ours {q["ours"]:.1f}, timm {q["timm"]:.1f} img/s, ratio '
                     f'{q["ratio"]:.2f}')
    if not ratios(result['rows']):
        lines.append('(none: no pair of bf16 rows)')
    if result['skipped']:
        why = result.get('skipped_because') or 'for lack of time'
        lines.append(f'skipped {why} (BUDGET_S={result["budget_s"]:.0f} s): '
                     + ', '.join(result['skipped']))
    else:
        lines.append(f'no step skipped (BUDGET_S={result["budget_s"]:.0f} s)')
    return '\n'.join(lines)


def input_table(result: Dict) -> str:
    """The input-bound rows: img/s and CPU-ms per image of each decode path."""
    found = result.get('input_bound')
    if not found:
        return 'input-bound: not run'
    if 'rows' not in found:
        return f'input-bound: {found.get("error")}'
    lines = [f'== input-bound ({found["images"]} JPEGs from disk to the normalised batch on '
             f'{found["device"]}, 1 CPU thread)']
    for name, row in found['rows'].items():
        lines.append(f'{name:<14} {row["img_s"]:>9.1f} img/s {row["cpu_ms_per_img"]:>8.3f} '
                     'CPU-ms/img')
    return '\n'.join(lines)


def _bench_cmd(who: str, batch: int, mode: str, layout: str) -> List[str]:
    cmd = [sys.executable, 'tools/benchmark.py', OURS if who == 'ours' else TIMM, '--synthetic',
           '--amp', '--amp-dtype', 'bfloat16', '--iters', os.environ.get('ITERS', '30'),
           '--warmup', os.environ.get('WARMUP', '10')]
    cmd += ['--channels-last'] if layout == 'channels_last' else []
    cmd += ['--compile'] if mode == 'compile' else []
    cmd += ['--cfg-options', 'default_hooks.apex_amp=None', f'train_dataloader.batch_size={batch}',
            f'val_dataloader.batch_size={batch}']
    if os.environ.get('SIZE'):  # the crop side (the first, random-resized-crop transform)
        cmd.append(f'train_dataloader.dataset.pipeline.0.scale={int(os.environ["SIZE"])}')
    return cmd


def main() -> int:
    start = float(os.environ.get('GPU_CHECK_START') or time.time())
    check = Check(os.environ.get('OUT') or '/tmp/gpu_check',
                  float(os.environ.get('BUDGET_S', '420')), start)
    say = print
    steps = []  # (name, who, batch, mode, layout), the most valuable first
    for batch in map(int, _env_list('BATCHES', '128 256')):
        for mode in _env_list('MODES', 'eager compile'):
            for layout in _env_list('LAYOUTS', 'channels_last nchw'):
                for who in ('ours', 'timm'):
                    steps.append((f'{who} b{batch} {mode} {layout}', who, batch, mode, layout))
    parity_device = os.environ.get('PARITY_DEVICE', 'cuda')

    say('== 1. versions')
    probe = check.run('versions and imports', [sys.executable, '-c', _VERSIONS],
                      min(check.left(), 120))
    found = re.search(r'^VERSIONS (.*)$', probe['output'], re.M)
    if not found:
        say(probe['output'][-3000:])
        say('gpu_check: the imports failed (above; the whole output is in '
            f'{os.path.join(check.out_dir, LOG_NAME)}): nothing else run')
        check.result['skipped'] = ['parity'] + [s[0] for s in steps]
        check.result['skipped_because'] = 'because the imports failed'
        check.save()
        say(table(check.result))
        return 1
    check.result['versions'] = json.loads(found.group(1))
    say(' '.join(f'{k} {v}' for k, v in check.result['versions'].items()))
    check.save()

    if parity_device == 'skip':
        say('== 2. parity: skipped (PARITY_DEVICE=skip)')
    else:
        say(f'== 2. parity on {parity_device}')
        limit = min(check.left(), float(os.environ.get('PARITY_MAX_S', '150')))
        cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
               'tests/test_models/test_parity.py']
        if os.environ.get('PARITY_K'):
            cmd += ['-k', os.environ['PARITY_K']]
        step = check.run('parity', cmd, limit, env=dict(RESNEST_MM_TEST_DEVICE=parity_device))
        summary = [line for line in step['output'].splitlines()
                   if re.search(r'\d+ (passed|failed|error)', line)]
        verdict = (summary[-1].strip('= ') if summary else 'no summary') if step['rc'] is not None \
            else f'timed out after {limit:.0f} s'
        check.result['parity'] = dict(device=parity_device, rc=step['rc'], summary=verdict)
        say(f'parity on {parity_device}: {verdict}')
        check.save()

    images = int(os.environ.get('INPUT_IMAGES', '512'))
    if images <= 0:
        say('== 2b. input-bound: skipped (INPUT_IMAGES=0)')
    else:
        say('== 2b. input-bound: real JPEGs from disk, CPU decode vs device decode')
        limit = min(check.left(), float(os.environ.get('INPUT_MAX_S', '90')))
        step = check.run('input-bound', [sys.executable, 'benchmarks/input_bound.py',
                                         '--images', str(images), '--batch',
                                         os.environ.get('INPUT_BATCH', '128')], limit)
        found = re.search(r'^INPUT_BOUND (.*)$', step['output'], re.M)
        check.result['input_bound'] = json.loads(found.group(1)) if found else dict(
            rc=step['rc'], error='no result (timed out or failed; see the log)')
        check.save()
        say(input_table(check.result))

    say('== 3. synthetic training throughput, bf16 autocast (ours vs timm resnest50d)')
    lasted: Dict[str, float] = {}  # mode -> seconds its last step took
    for name, who, batch, mode, layout in steps:
        least = float(os.environ.get('MIN_COMPILE_S', '90') if mode == 'compile'
                      else os.environ.get('MIN_STEP_S', '20'))
        need = max(least, lasted.get(mode, 0.0)) * (2 if who == 'ours' else 1)
        left = check.left()
        why = None
        if who == 'timm' and check.result['skipped'][-1:] == [name.replace('timm', 'ours', 1)]:
            why = 'its ours half was skipped: timm alone gives no ratio'
        elif left < need:
            why = f'{max(left, 0):.0f} s of the budget left, {need:.0f} s needed'
        if why:
            check.result['skipped'].append(name)
            say(f'{name}: skipped ({why})')
            continue
        step = check.run(name, _bench_cmd(who, batch, mode, layout), left)
        row = dict(who=who, batch=batch, mode=mode, layout=layout, rc=step['rc'],
                   seconds=round(step['seconds'], 1), **parse_benchmark(step['output']))
        check.result['rows'].append(row)
        lasted[mode] = step['seconds']
        check.save()
        say(f'{name}: train {row["train"]} img/s, eval {row["eval"]} img/s, autocast '
            f'{row["autocast"]}, {row_status(row)} ({step["seconds"]:.0f} s)')

    check.save()
    say(table(check.result))
    check.log(table(check.result))
    check.log(input_table(check.result))
    files = sorted(os.listdir(check.out_dir))
    say(f'{len(files)} files under {check.out_dir} (at most {MAX_OUT_FILES} come back): '
        + ' '.join(files) + f'; {time.time() - start:.0f} s of {check.budget_s:.0f} s used')
    return 0


if __name__ == '__main__':
    sys.exit(main())
