"""Top-1 of the digits demo trained with the CPU input path and with ``--decode-on-device``.

    python benchmarks/digits_decode_on_device.py [--epochs 10] [--data data/digits]
        [--work-dir work_dirs/digits_decode_on_device] [--together]

The acceptance check of decoding on the device: ``configs/resnest50_1xb32_digits.py`` is trained
twice with the same seed (the config's ``randomness``), once as configured (workers decode, crop
and pack) and once with ``--decode-on-device`` (workers read the bytes and draw the crop; the data
preprocessor decodes and crops the batch, on the CPU here: ``device='cpu'`` decoding). Both runs
are evaluated on the same validation images by the same CPU pipeline; the two final top-1s
should agree within 1 point. ``--epochs`` shortens both runs alike (the cosine schedule is
shortened with them); ``--together`` runs the two at once (on a machine with cores to spare).
The data set is made by ``tools/dataset_converters/make_digits.py`` when ``--data`` is missing.
It prints both top-1s, their difference and the two commands; each run's ``summary.json`` is in
its work dir.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'configs/resnest50_1xb32_digits.py'


def train_command(mode: str, args: argparse.Namespace) -> list:
    data = os.path.abspath(args.data)
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    if args.epochs is not None:  # the config's schedule: 1 warm-up epoch, then cosine
        options += [f'train_cfg.max_epochs={args.epochs}',
                    f'param_scheduler.1.T_max={args.epochs - 1}',
                    f'param_scheduler.1.end={args.epochs}']
    command = [sys.executable, 'tools/train.py', CONFIG, '--work-dir',
               os.path.join(os.path.abspath(args.work_dir), mode), '--cfg-options', *options]
    return command + (['--decode-on-device'] if mode == 'device' else [])


def top1(work_dir: str) -> float:
    with open(os.path.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    if 'accuracy/top1' not in summary:
        raise SystemExit(f'{work_dir}/summary.json has no accuracy/top1: the run was not '
                         'evaluated (see its log)')
    return float(summary['accuracy/top1'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=None,
                        help="train this many epochs (>= 2) instead of the config's 10")
    parser.add_argument('--data', default='data/digits')
    parser.add_argument('--work-dir', default='work_dirs/digits_decode_on_device')
    parser.add_argument('--together', action='store_true', help='run both trainings at once')
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < 2:
        parser.error('--epochs must be at least 2 (one warm-up epoch, then the cosine)')
    os.chdir(ROOT)
    if not os.path.isdir(os.path.join(args.data, 'train')):
        subprocess.run([sys.executable, 'tools/dataset_converters/make_digits.py', args.data],
                       check=True)
    commands = {mode: train_command(mode, args) for mode in ('cpu', 'device')}
    started, durations = {}, {}
    running = {}
    for mode, command in commands.items():
        os.makedirs(os.path.join(args.work_dir, mode), exist_ok=True)
        log = open(os.path.join(args.work_dir, f'{mode}.log'), 'w')
        started[mode] = time.monotonic()
        running[mode] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
        if not args.together:
            running[mode][0].wait()
            durations[mode] = time.monotonic() - started[mode]
    for mode, (process, log) in running.items():
        process.wait()
        log.close()
        durations.setdefault(mode, time.monotonic() - started[mode])
        if process.returncode:
            raise SystemExit(f'the {mode} run failed (exit {process.returncode}); see '
                             f'{args.work_dir}/{mode}.log')
    result = {mode: top1(os.path.join(args.work_dir, mode)) for mode in commands}
    for mode, command in commands.items():
        print(f'{mode:>6}: top-1 {result[mode]:.2f} ({durations[mode] / 60:.1f} min): '
              f'{" ".join(command[1:])}')
    difference = result['device'] - result['cpu']
    verdict = 'within' if abs(difference) <= 1 else 'NOT within'
    print(f'decode on device - CPU path: {difference:+.2f} points ({verdict} +-1)')


if __name__ == '__main__':
    main()
