"""Convert a resnest_mm checkpoint to mmpretrain's, the original package's or timm's layout.

    python tools/model_converters/resnest_from_mm.py SRC DST [--to mmpretrain|official|timm]

The reverse of ``resnest_to_mm.py``. ``--to mmpretrain`` (the default) writes a checkpoint that
mmpretrain's ``ImageClassifier`` with its own ``ResNeSt`` loads strictly (``load_from``, its
``tools/test.py``, ``get_model(cfg, pretrained=DST)``); ``--to official``/``timm`` a plain state
dict for ``resnest.torch.resnest50()`` or ``timm.create_model('resnest50d')``. SRC is read as data
only (``--unsafe-load`` for a file you trust); DST is written atomically with its SHA-256.
Bad input: one sentence, exit status 2.
"""
import argparse

from resnest_mm.models.utils import EXPORT_FORMATS, export_checkpoint
from resnest_mm.utils.errors import run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='resnest_mm checkpoint (from tools/train.py)')
    parser.add_argument('dst', help='where to write the converted weights')
    parser.add_argument('--to', choices=EXPORT_FORMATS, default='mmpretrain',
                        help='target layout (default: mmpretrain)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='unpickle a SRC that is not plain data (it can run code): only for '
                        'a file you trust')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    info = export_checkpoint(args.src, args.dst, fmt=args.to, unsafe=args.unsafe_load)
    head = 'none' if info['num_classes'] is None else f'{info["num_classes"]} classes'
    print(f'converted {info["src"]} (resnest_mm) -> {info["dst"]} ({info["format"]}, '
          f'classifier: {head})')
    return 0


if __name__ == '__main__':
    run_tool(main, 'tools/model_converters/resnest_from_mm.py')
