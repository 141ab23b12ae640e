"""Training and evaluation images/s of a config on this device: compute ceiling and input bound.

    python tools/benchmark.py CONFIG [--iters 20] [--warmup 3] [--synthetic]
        [--amp] [--channels-last] [--compile] [--cfg-options KEY=VALUE ...]

Synthetic batches on the device give the compute ceiling (the train step through the runner,
optimizer wrapper and AMP set-up that tools/train.py builds with the same flags, and the
evaluation forward); the configured data loaders give the input bound; the line for each says
which of the two bounds this machine. ``--synthetic`` skips the data loaders (no data set
needed). FPS is the seed's: images per iteration / iteration time.
"""


def main() -> None:
    from resnest_mm.frontends import benchmark, cli

    parser = cli.train_parser()  # the flags of tools/train.py, merged the same way
    parser.description = __doc__.split('\n')[0]
    group = parser.add_argument_group('benchmark')
    group.add_argument('--iters', type=int, default=20, help='timed iterations')
    group.add_argument('--warmup', type=int, default=3, help='iterations before timing')
    group.add_argument('--synthetic', action='store_true', help='skip the data loaders')
    args = parser.parse_args()
    cfg = cli.merge_train_args(cli.load_config(args.config), args)
    benchmark.report(cfg, args.iters, args.warmup, real=not args.synthetic)


if __name__ == '__main__':
    from resnest_mm.utils.errors import run_tool
    run_tool(main, 'tools/benchmark.py')
