"""Convert a ResNeSt checkpoint of the original package, timm or mmpretrain to resnest_mm.

    python tools/model_converters/resnest_to_mm.py SRC DST [--format official|timm|mmpretrain]
        [--num-classes N]

The result is a checkpoint that configs accept as ``load_from`` and that
``tools/test.py CONFIG DST`` evaluates. SRC is read as data only (``weights_only=True`` with an
allow-list; ``--unsafe-load`` for a file you trust); DST is written atomically with its SHA-256.
Bad input: one sentence, exit status 2.
"""
import argparse

from resnest_mm.models.utils import FORMATS, convert_checkpoint
from resnest_mm.utils.errors import run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint to convert (.pth/.pt, plain weights)')
    parser.add_argument('dst', help='where to write the resnest_mm checkpoint')
    parser.add_argument('--format', choices=FORMATS, default=None,
                        help='layout of SRC; detected from its keys when omitted')
    parser.add_argument('--num-classes', type=int, default=None,
                        help='class count of the model it is for; a classifier of another '
                             'size is dropped')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='unpickle a SRC that is not plain data (it can run code): only for '
                        'a file you trust')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    info = convert_checkpoint(args.src, args.dst, fmt=args.format,
                              num_classes=args.num_classes, unsafe=args.unsafe_load)
    head = 'dropped' if info['head_dropped'] else f'{info["num_classes"]} classes'
    print(f'converted {info["src"]} ({info["format"]}) -> {info["dst"]} (classifier: {head})')
    return 0


if __name__ == '__main__':
    run_tool(main, 'tools/model_converters/resnest_to_mm.py')
