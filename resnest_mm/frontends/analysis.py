"""What ``tools/analysis_tools/analyze_logs.py`` and ``get_flops.py`` do, in the package."""
from __future__ import annotations

import argparse
from typing import List, Optional


def analyze_logs_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Draw a run's curves, or time its iterations")
    sub = parser.add_subparsers(dest='command', required=True)
    plot = sub.add_parser('plot_curve', help='draw logged scalars against the iteration')
    plot.add_argument('logs', nargs='+', metavar='LOG.json',
                      help='WORK_DIR/<timestamp>/vis_data/<timestamp>.json of one or more runs')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='logged names, e.g. loss lr accuracy/top1 fps (default: loss)')
    plot.add_argument('--out', required=True, help='image file to write (.png, .pdf, .svg)')
    plot.add_argument('--legend', nargs='+', help='a label per log')
    plot.add_argument('--title', help='figure title')
    timing = sub.add_parser('cal_train_time', help='mean iteration time, slowest/fastest epoch')
    timing.add_argument('logs', nargs='+', metavar='LOG.json')
    return parser


def analyze_logs(argv: Optional[List[str]] = None) -> None:
    """``tools/analysis_tools/analyze_logs.py``."""
    from ..analysis.log_curves import plot_curves, train_time

    args = analyze_logs_parser().parse_args(argv)
    if args.command == 'plot_curve':
        out = plot_curves(args.logs, args.keys, args.out, legend=args.legend, title=args.title)
        print(f'curves of {", ".join(args.keys)} written to {out}')
        return
    for path in args.logs:
        info = train_time(path)
        print(f'{path}: {info["logged"]} logged iterations, mean {info["mean"]:.4f} s/iter '
              f'(std {info["std"]:.4f}); slowest epoch {info["slowest_epoch"][0]} '
              f'({info["slowest_epoch"][1]:.4f} s/iter), fastest epoch '
              f'{info["fastest_epoch"][0]} ({info["fastest_epoch"][1]:.4f} s/iter)')


def get_flops_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='FLOPs and parameters of a config\'s model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='SIZE',
                        help="input H W, or one side (default: the config's test crop)")
    parser.add_argument('--table', action='store_true', help='also print the per-module table')
    return parser


def get_flops(argv: Optional[List[str]] = None) -> dict:
    """``tools/analysis_tools/get_flops.py``."""
    from ..analysis.complexity import model_complexity
    from ..utils.errors import ExplainedValueError

    args = get_flops_parser().parse_args(argv)
    size = None
    if args.shape:
        if len(args.shape) not in (1, 2):
            raise ExplainedValueError(f'--shape {args.shape}: give H W or one side')
        size = (args.shape[0], args.shape[-1])
    info = model_complexity(args.config, size, show_table=args.table)
    if args.table:
        print(info['table'])
    print(f'input shape: {tuple(info["input_shape"])}')
    print(f'FLOPs: {info["flops_str"]} ({info["flops"]:,} multiply-adds)')
    print(f'parameters: {info["params_str"]} ({info["params"]:,})')
    return info
