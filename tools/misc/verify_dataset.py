"""Read every image of a dataset folder and list the ones that cannot be decoded.

    python tools/misc/verify_dataset.py DATA_ROOT [--workers N] [--max-pixels N]
        [--max-scans N] [--max-decode-seconds S] [--extensions .jpg .png ...]

DATA_ROOT is a data root with train/ val/ test/ splits, or one split. Files are found by the
rule of the dataset scan and decoded as the loaders decode them (LoadImageRobust, same
max_pixels, max_scans, max_decode_seconds), so a file listed here is a file training would
skip; what training ignores (hidden and system files, other extensions, images outside class
folders) is counted in a note; an empty class folder, which training refuses, is a problem.
Progress is a bar on a terminal and a line every 5% elsewhere (a log file). Names are printed
escaped (a newline in a name shows as \n). Exit status: 0 all images read, 1 unreadable files
or empty class folders found, 2 an error of this tool (no such folder, no images, bad
arguments).
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
    parser.add_argument('--max-scans', type=int, default=None,
                        help="the loaders' max_scans (default: 100)")
    parser.add_argument('--max-decode-seconds', type=float, default=None,
                        help="the loaders' max_decode_seconds (default: 10)")
    parser.add_argument('--extensions', nargs='+', default=None,
                        help="the dataset's image extensions (default: mmpretrain's)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data_root):  # before the imports, which take seconds
        shown = args.data_root.encode('unicode_escape').decode('ascii')
        print(f'{PROG}: error: {shown} is not a folder', file=sys.stderr)
        return 2
    from resnest_mm.datasets.decode_limits import DEFAULT_MAX_DECODE_SECONDS, DEFAULT_MAX_SCANS
    from resnest_mm.datasets.image_header import DEFAULT_MAX_PIXELS
    from resnest_mm.datasets.verify import verify_folder
    from resnest_mm.utils.escape import escape_name
    try:
        report = verify_folder(
            args.data_root, workers=args.workers,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, extensions=args.extensions,
            max_scans=args.max_scans or DEFAULT_MAX_SCANS,
            max_decode_seconds=args.max_decode_seconds or DEFAULT_MAX_DECODE_SECONDS)
    except FileNotFoundError as exc:
        print(f'{PROG}: error: {escape_name(str(exc))}', file=sys.stderr)
        return 2
    except BrokenProcessPool:
        print(f'{PROG}: error: a decoding process died (killed by the system: out of memory?) '
              'before every file was read; nothing was listed', file=sys.stderr)
        return 2
    except Exception as exc:  # an error of its own: a sentence and status 2, never a traceback
        print(f'{PROG}: error: {type(exc).__name__}: {escape_name(str(exc))}',
              file=sys.stderr)
        return 2
    for note in report.notes:
        print(f'note: {note}')
    for problem in report.problems:
        print(f'problem: {problem}')
    if not report.unreadable:
        print(f'all {report.images} files read')
        return 1 if report.problems else 0
    print(f'{len(report.unreadable)} of {report.images} files could not be read:')
    for reason in report.unreadable:
        print(f'  {reason}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
