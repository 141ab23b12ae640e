"""Our Runner training loop against a plain PyTorch loop: what the MMEngine machinery costs.

    python benchmarks/runner_overhead.py [--iters 20] [--warmup 3] [--batch 16] [--size 64]
                                         [--repeats 3] [--amp]

The same model (the ResNeSt-50 classifier of ``configs/resnest50_1xb32_digits.py``: its data
preprocessor, backbone and head), the same in-memory batches (packed as ``PackInputs`` packs
them, collated by mmengine's ``pseudo_collate``, no workers), the same optimizer
(``NpuFusedSGD`` as configured) and the same AMP setting. The Runner runs the config's hooks
(logging, throughput, summary, non-finite loss, checkpoint hook without saving inside the run)
and our ``ResumableEpochBasedTrainLoop``; the plain loop calls ``model.train_step`` (preprocess,
forward under the wrapper's autocast, backward, step) over a plain ``DataLoader``. Timed: the
iterations after ``--warmup``; the two loops alternate ``--repeats`` times (taking turns at
going first) and the medians, their ratio (goal <= 1.03) and the ratio within each repeat
(median, range) are printed.
"""
import argparse
import statistics
import tempfile
import time

import numpy as np
import torch


def make_batches(count: int, size: int):
    from mmpretrain.datasets.transforms import PackInputs
    rng = np.random.default_rng(0)
    pack = PackInputs()
    return [pack(dict(img=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                      gt_label=int(rng.integers(0, 10)), img_shape=(size, size),
                      ori_shape=(size, size)))
            for _ in range(count)]


def build_runner(samples, args, work_dir):
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import resnest_mm.registry  # noqa: F401
    cfg = Config.fromfile('configs/resnest50_1xb32_digits.py')
    cfg.work_dir = work_dir
    cfg.train_dataloader = dict(dataset=samples, batch_size=args.batch, num_workers=0,
                                sampler=dict(type='DefaultSampler', shuffle=False),
                                collate_fn=dict(type='pseudo_collate'))
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=1)
    cfg.param_scheduler = None
    cfg.auto_scale_lr = dict(enable=False)
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=10,
                                        save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.log_level = 'WARNING'
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
    clock = {}

    class Clock(Hook):
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == args.warmup:
                clock['start'] = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            clock['end'] = time.perf_counter()

    torch.manual_seed(0)
    # Runner(...) rather than from_cfg: a config holding in-memory data cannot be dumped.
    runner = Runner(
        model=cfg.model, work_dir=cfg.work_dir, train_dataloader=cfg.train_dataloader,
        optim_wrapper=cfg.optim_wrapper, train_cfg=cfg.train_cfg,
        default_hooks=cfg.default_hooks, custom_hooks=list(cfg.custom_hooks) + [Clock()],
        env_cfg=cfg.env_cfg, log_level=cfg.log_level, default_scope=cfg.default_scope,
        randomness=cfg.randomness)
    return runner, clock


def time_runner(samples, args) -> float:
    with tempfile.TemporaryDirectory() as work_dir:
        runner, clock = build_runner(samples, args, work_dir)
        runner.train()
        return clock['end'] - clock['start']


def time_plain(samples, args) -> float:
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    with tempfile.TemporaryDirectory() as work_dir:  # the same model and optimizer objects
        runner, _ = build_runner(samples, args, work_dir)
        model = runner.model
        optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    loader = DataLoader(samples, batch_size=args.batch, shuffle=False, num_workers=0,
                        collate_fn=pseudo_collate)
    model.train()
    start = None
    for i, batch in enumerate(loader):
        if i == args.warmup:
            start = time.perf_counter()
        # BaseModel.train_step: preprocess, forward under the wrapper's autocast, backward
        # (scaled when a loss scaler is on), step, zero_grad: the Runner's work minus the Runner.
        log_vars = model.train_step(batch, optim_wrapper)
        log_vars['loss'].item()  # the Runner's MessageHub reads the loss every iteration too
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--amp', action='store_true')
    args = parser.parse_args()
    samples = make_batches(args.iters * args.batch, args.size)
    runner_times, plain_times = [], []
    pair = [(time_runner, runner_times), (time_plain, plain_times)]
    for rep in range(args.repeats):
        # the first of a pair runs on a machine the other left: take turns at going first
        for timer, times in pair if rep % 2 == 0 else pair[::-1]:
            times.append(timer(samples, args))
    measured = args.iters - args.warmup
    runner_s, plain_s = statistics.median(runner_times), statistics.median(plain_times)
    print(f'{measured} iterations (batch {args.batch}, {args.size}px, amp={args.amp}), '
          f'{args.repeats} alternating repeats, medians:')
    print(f'  runner {runner_s / measured * 1000:.1f} ms/iter, plain loop '
          f'{plain_s / measured * 1000:.1f} ms/iter, ratio {runner_s / plain_s:.3f} '
          f'(goal <= 1.03)')
    paired = [runner / plain for runner, plain in zip(runner_times, plain_times)]
    print(f'  paired per repeat: median {statistics.median(paired):.3f}, range '
          f'{min(paired):.3f}-{max(paired):.3f}')


if __name__ == '__main__':
    main()
