"""What ``tools/infer.py`` and ``tools/deploy/export.py`` do, in the package so tests reach it."""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

from ..utils.cfg_options import CfgOptionsAction
from ..utils.errors import ExplainedValueError


def _loading_args(parser: argparse.ArgumentParser) -> None:
    """How the weights and config are read: ``--unsafe-load`` and ``--cfg-options``."""
    parser.add_argument('--unsafe-load', action='store_true',
                        help='unpickle a checkpoint that is not plain data (it can run code): '
                        'only for a file you trust')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config keys')


def infer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Classify images with a trained ResNeSt')
    parser.add_argument('images', nargs='+', metavar='IMAGE', help='image files')
    parser.add_argument('--config', required=True, help='the config the model was trained with')
    parser.add_argument('--checkpoint', required=True, help='the weights: a file, a model name '
                        '(resnest50) or a URL (docs/models.md)')
    parser.add_argument('--topk', type=int, default=5, help='classes to print per image')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda:0, npu:0 ... (default: the best device present)')
    parser.add_argument('--batch-size', type=int, default=16, help='images per forward pass')
    parser.add_argument('--out', help='also write the predictions to this JSON file')
    _loading_args(parser)
    return parser


def infer(argv: Optional[List[str]] = None) -> List[dict]:
    """``tools/infer.py``: print the top-k classes and scores of each image."""
    from ..apis.inference import inference_model, init_model

    args = infer_parser().parse_args(argv)
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options, unsafe=args.unsafe_load)
    results = inference_model(model, args.images, topk=args.topk, batch_size=args.batch_size,
                              progress=len(args.images) > args.batch_size)
    for path, result in zip(args.images, results):
        print(path)
        for rank, entry in enumerate(result['topk'], 1):
            name = entry['class'] if entry['class'] is not None else f'class {entry["label"]}'
            print(f'  {rank}. {name:<30} {entry["score"]:<10.4g}  (label {entry["label"]})')
    if args.out:
        from ..utils.fileio import atomic_write

        text = json.dumps([dict(image=path, **{k: v for k, v in r.items() if k != 'pred_scores'})
                           for path, r in zip(args.images, results)], indent=2)
        atomic_write(args.out, lambda f: f.write(text.encode()))
        print(f'predictions written to {args.out}')
    return results


def export_parser() -> argparse.ArgumentParser:
    from ..apis.export import FORMATS

    parser = argparse.ArgumentParser(
        description='Export a trained ResNeSt (state dict, TorchScript or ONNX) and check it')
    parser.add_argument('config', help='the config the model was trained with')
    parser.add_argument('checkpoint', help='the weights: a file, a model name '
                        '(resnest50) or a URL (docs/models.md)')
    parser.add_argument('--format', choices=FORMATS, default='onnx', help='default: onnx')
    parser.add_argument('--out', help='output file (default: beside the checkpoint, '
                        '.state_dict.pth / .torchscript.pt / .onnx)')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='any batch size (ONNX; TorchScript and state dicts always)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help="default: the config's test crop")
    parser.add_argument('--opset', type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest logit difference the check accepts (default 1e-4)')
    parser.add_argument('--check-batches', type=int, default=4,
                        help='random batches the check runs (default 4)')
    parser.add_argument('--no-check', action='store_true',
                        help='write only; do not run the file back against PyTorch')
    _loading_args(parser)
    return parser


def export(argv: Optional[List[str]] = None) -> dict:
    """``tools/deploy/export.py``: write the model in a format, run it back, print the diff."""
    from ..apis.export import SUFFIXES, export_model
    from ..apis.inference import init_model

    args = export_parser().parse_args(argv)
    if args.check_batches < 1 and not args.no_check:
        raise ExplainedValueError(f'--check-batches {args.check_batches}: at least 1 (or '
                                  '--no-check)')
    model = init_model(args.config, args.checkpoint, device='cpu', cfg_options=args.cfg_options,
                       unsafe=args.unsafe_load)
    out = args.out or os.path.splitext(args.checkpoint)[0] + SUFFIXES[args.format]
    result = export_model(model, args.format, out, dynamic_batch=args.dynamic_batch,
                          size=tuple(args.input_size) if args.input_size else None,
                          opset=args.opset, check=not args.no_check,
                          check_batches=args.check_batches, atol=args.atol)
    print(f'{args.format}: {result["path"]} (input {result["input_shape"]}; preprocessing and '
          f'classes in {result["meta_path"]})')
    if result['max_abs_diff'] is not None:
        print(f'check against PyTorch: max abs diff {result["max_abs_diff"]:.3g} '
              f'(allowed {args.atol:g})')
    return result
