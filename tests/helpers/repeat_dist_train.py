"""Run ``bash tools/dist_train.sh`` (2 gloo ranks, the tiny config) again and again and count the
runs that exited 0 on every rank: the acceptance check that a successful distributed run ends
with status 0 every time (issue 21; "terminate called without an active exception" on rank 1 in
2 of 15 runs before the fix).

    python tests/helpers/repeat_dist_train.py [--runs 20] [--keep DIR]

Prints one line per run and a last line ``N of M runs exited 0``; exits 1 unless all did.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.helpers.tiny_config import TINY, data_options, free_port, write_tiny_data  # noqa: E402


def run_once(root: str, index: int, timeout: float = 300) -> subprocess.CompletedProcess:
    """One 2-rank run of one epoch (3 iterations per rank) in a fresh work dir."""
    work = os.path.join(root, f'work{index}')
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PORT=str(free_port()))
    return subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY, '2', '--work-dir', work,
         *data_options(os.path.join(root, 'data'), 'train_cfg.max_epochs=1')],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--keep', help='folder for data and work dirs (default: a temp dir)')
    args = parser.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix='repeat_dist_train_')
    write_tiny_data(os.path.join(root, 'data'))
    ok = 0
    for index in range(args.runs):
        start = time.monotonic()
        result = run_once(root, index)
        seconds = time.monotonic() - start
        aborted = 'terminate called' in result.stderr
        ok += result.returncode == 0 and not aborted
        print(f'run {index + 1}: exit {result.returncode}{" (terminate called)" if aborted else ""}'
              f' in {seconds:.0f} s', flush=True)
        if result.returncode != 0 or aborted:
            print(result.stderr[-3000:], flush=True)
    print(f'{ok} of {args.runs} runs exited 0', flush=True)
    return 0 if ok == args.runs else 1


if __name__ == '__main__':
    sys.exit(main())
