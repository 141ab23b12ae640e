"""Read every image of a dataset folder and list the ones that cannot be decoded.

    python tools/misc/verify_dataset.py DATA_ROOT [--workers N]

Uses the same decoder as training (LoadImageRobust), so a file listed here is a file training
would skip. Exit status 1 when any file is unreadable.
"""
import argparse
import sys

from resnest_mm.datasets.verify import verify_folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='folder to scan (recursively), e.g. data/imagenet')
    parser.add_argument('--workers', type=int, default=2, help='decoding processes')
    args = parser.parse_args(argv)
    try:
        total, bad = verify_folder(args.data_root, workers=args.workers)
    except FileNotFoundError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if not bad:
        print(f'all {total} files read')
        return 0
    print(f'{len(bad)} of {total} files could not be read:')
    for reason in bad:
        print(f'  {reason}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
