"""The decode-time bound of the loaders: the slowest file ``max_pixels`` and ``max_scans`` let
through, against the refusals of the files past them.

    python benchmarks/decode_bound.py [--side 9459] [--scans 100]

Builds progressive JPEGs of a flat grey ``side x side`` image (9459 x 9459 is Pillow's and our
``max_pixels``) holding ``--scans`` scans (the default ``max_scans``): Pillow's 10, then its
last scan (an AC refinement of Y, a few bytes) repeated, which libjpeg decodes with one pass
over every block per scan. It prints the CPU and wall time of ``LoadImageRobust`` on it (the
worst a file within the limits costs), the same for a file of one scan more and for the
issue's file (8000 x 8000, 20,006 scans, 2.1 MB; refused from its markers), and of a
baseline decode of the same image with 10 scans.
"""
import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def progressive_jpeg(side: int, scans: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 128, np.uint8)).save(
        buf, format='JPEG', quality=80, progressive=True)
    data = buf.getvalue()
    last = data.rfind(b'\xff\xda')
    return data[:-2] + data[last:-2] * (scans - 10) + b'\xff\xd9'


def timed(loader, path: str):
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        loader.load(path, {})
        outcome = 'decoded'
    except Exception as exc:  # the refusal, printed
        outcome = f'refused: {str(exc).split(": ", 1)[1][:70]}...'
    return time.process_time() - cpu, time.perf_counter() - wall, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--side', type=int, default=9459)
    parser.add_argument('--scans', type=int, default=100)
    args = parser.parse_args()
    from resnest_mm.datasets.transforms import LoadImageRobust
    loader = LoadImageRobust(max_scans=args.scans, max_decode_seconds=None)
    with tempfile.TemporaryDirectory() as folder:
        cases = [(f'{args.side}x{args.side}, 10 scans', args.side, 10),
                 (f'{args.side}x{args.side}, {args.scans} scans', args.side, args.scans),
                 (f'{args.side}x{args.side}, {args.scans + 1} scans', args.side, args.scans + 1),
                 ('8000x8000, 20006 scans (the issue)', 8000, 20006)]
        for label, side, scans in cases:
            path = os.path.join(folder, 'x.JPEG')
            with open(path, 'wb') as f:
                f.write(progressive_jpeg(side, scans))
            size = os.path.getsize(path)
            cpu, wall, outcome = timed(loader, path)
            print(f'{label:38s} {size / 1e6:6.2f} MB  cpu {cpu:7.3f} s  wall {wall:7.3f} s  '
                  f'{outcome}')


if __name__ == '__main__':
    main()
