"""Training and evaluation images/s of a config on this device: compute ceiling and input bound.

    python tools/benchmark.py CONFIG [--iters 20] [--warmup 3] [--amp] [--synthetic]
        [--channels-last] [--compile] [--cfg-options KEY=VALUE ...]

Synthetic batches on the device give the compute ceiling (train step with the config's
optimizer and AMP setting, and evaluation forward); the configured data loaders give the input
bound; the line for each says which of the two bounds this machine. ``--synthetic`` skips the
data loaders (no data set needed). FPS is the seed's: images per iteration / iteration time.
"""
import argparse

from mmengine.config import Config, DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--amp', action='store_true', help="the device's mixed precision")
    parser.add_argument('--synthetic', action='store_true', help='skip the data loaders')
    parser.add_argument('--channels-last', action='store_true', help='the model in NHWC')
    parser.add_argument('--compile', action='store_true', help='torch.compile the steps')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    import resnest_mm.registry  # noqa: F401
    from resnest_mm.engine import benchmark, cli, preflight
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        preflight.check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.amp:
        cli.enable_amp(cfg)
    benchmark.report(cfg, args.iters, args.warmup, real=not args.synthetic,
                     channels_last=args.channels_last, compile=args.compile)


if __name__ == '__main__':
    from resnest_mm.utils.errors import run_tool
    run_tool(main, 'tools/benchmark.py')
