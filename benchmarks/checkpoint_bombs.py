"""Memory and time of the worst checkpoint bombs, each loaded in a fresh process.

    python benchmarks/checkpoint_bombs.py [--dir DIR] [--unsafe]

Writes three files: a small genuine checkpoint (the baseline), the 1.5 MB one whose ``meta``
asks for ``bytearray(3 * 10**9)``, and one whose 2 MB zip record inflates to 2 GiB. Each is
loaded by :func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file` in a child process; the
child's peak resident memory (``ru_maxrss``, imports included) and the load's time are printed, with
the first line of the refusal. ``--unsafe`` loads the bytearray bomb with ``unsafe=True`` too,
to show what the bound saves (it then allocates the 3 GB).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.helpers.forged_checkpoints import Forged, save_forged, torch_zip  # noqa: E402

CHILD = '''
import resource, sys, time
from resnest_mm.utils.checkpoint_io import CheckpointError, load_checkpoint_file
start = time.time()
try:
    load_checkpoint_file(sys.argv[1], unsafe=sys.argv[2] == '1')
    result = 'loaded'
except CheckpointError as exc:
    result = str(exc)[:150]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.time() - start, result)
'''


def _measure(path: str, unsafe: bool = False):
    """Peak RSS (MiB, imports included) and seconds of the load, and its result, as a child
    process loading ``path`` reports them."""
    out = subprocess.run([sys.executable, '-c', CHILD, path, '1' if unsafe else '0'], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                         check=True).stdout.strip()
    kilobytes, seconds, result = out.splitlines()[-1].split(' ', 2)
    return int(kilobytes) / 1024, float(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', help='where to write the files (default: a temporary folder)')
    parser.add_argument('--unsafe', action='store_true', help='also load the bytearray bomb '
                        'with unsafe=True (allocates 3 GB)')
    args = parser.parse_args()
    folder = args.dir or tempfile.mkdtemp(prefix='checkpoint_bombs.')
    os.makedirs(folder, exist_ok=True)
    baseline = os.path.join(folder, 'genuine.pth')
    torch.save(dict(state_dict=dict(w=torch.randn(256, 256)), meta=dict(epoch=1)), baseline)
    bytearray_bomb = os.path.join(folder, 'bytearray.pth')
    save_forged(dict(state_dict=dict(w=torch.zeros(384, 1024)),
                     meta=dict(x=Forged(bytearray, 3 * 10 ** 9))), bytearray_bomb)
    zip_bomb = os.path.join(folder, 'inflate.pth')
    zeros = bytes(1 << 20)
    torch_zip(zip_bomb, b'\x80\x02}q\x00.', {'0': (zeros for _ in range(2048))},
              compress=zipfile.ZIP_DEFLATED)
    cases = [('genuine 256 KB checkpoint', baseline, False),
             ('bytearray(3e9) in meta', bytearray_bomb, False),
             ('2 MB record inflating to 2 GiB', zip_bomb, False)]
    if args.unsafe:
        cases.append(('bytearray(3e9), unsafe=True', bytearray_bomb, True))
    print(f'{"file":34} {"size":>10} {"peak RSS":>10} {"load":>7}  result')
    for name, path, unsafe in cases:
        rss, seconds, out = _measure(path, unsafe)
        print(f'{name:34} {os.path.getsize(path) / 1e6:8.2f}MB {rss:8.0f}MiB {seconds:6.2f}s  '
              f'{out}')


if __name__ == '__main__':
    main()
