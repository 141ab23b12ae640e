"""Read every image of a dataset folder and list the ones that cannot be decoded.

    python tools/misc/verify_dataset.py DATA_ROOT [--workers N] [--max-pixels N]
        [--extensions .jpg .png ...]

DATA_ROOT is a data root with train/ val/ test/ splits, or one split. Files are found by the
rule of the dataset scan and decoded as the loaders decode them (LoadImageRobust, same
max_pixels), so a file listed here is a file training would skip; what training ignores (hidden
and system files, other extensions, images outside class folders) is counted in a note.
Exit status: 0 all images read, 1 unreadable files found, 2 an error of this tool (no such
folder, no images, bad arguments).
"""
import argparse
import os
import sys
from concurrent.futures.process import BrokenProcessPool

PROG = 'verify_dataset.py'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='folder to scan, e.g. data/imagenet')
    parser.add_argument('--workers', type=int, default=2, help='decoding processes')
    parser.add_argument('--max-pixels', type=int, default=None,
                        help="the loaders' max_pixels (default: Pillow's limit, 89478485)")
    parser.add_argument('--extensions', nargs='+', default=None,
                        help="the dataset's image extensions (default: mmpretrain's)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data_root):  # before the imports, which take seconds
        print(f'{PROG}: error: {args.data_root} is not a folder', file=sys.stderr)
        return 2
    from resnest_mm.datasets.image_header import DEFAULT_MAX_PIXELS
    from resnest_mm.datasets.verify import verify_folder
    try:
        report = verify_folder(args.data_root, workers=args.workers,
                               max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
                               extensions=args.extensions)
    except FileNotFoundError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2
    except BrokenProcessPool:
        print(f'{PROG}: error: a decoding process died (killed by the system: out of memory?) '
              'before every file was read; nothing was listed', file=sys.stderr)
        return 2
    except Exception as exc:  # an error of its own: a sentence and status 2, never a traceback
        print(f'{PROG}: error: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 2
    for note in report.notes:
        print(f'note: {note}')
    if not report.unreadable:
        print(f'all {report.images} files read')
        return 0
    print(f'{len(report.unreadable)} of {report.images} files could not be read:')
    for reason in report.unreadable:
        print(f'  {reason}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
