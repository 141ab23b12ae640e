"""Forward + backward time of our ResNeSt-50 classifier against its peers, NCHW and channels_last.

    python benchmarks/model_step.py [--batch 8] [--size 224] [--repeats 5] [--threads N]
                                    [--dtype fp32|bf16] [--device cpu|cuda]

Peers: the original ``resnest`` package (``resnest.torch.resnest50``), timm's ``resnest50d``
(the same network) and mmpretrain's ``ResNeSt`` (depth 50). Each model is in training mode and
takes the same random batch; a step is forward, cross-entropy, backward (gradients cleared
first). Every (model, layout) pair is timed once per repetition, the pairs interleaved (each
repetition in a rotated order), after one warm-up step each; medians are printed, then each ratio
ours / peer (< 1: ours is faster), ours against the fastest peer in its best layout (the goal on
CPU fp32 is <= 0.95), that ratio taken within each repetition (median and quartiles: pairs
close in time share the machine's drift), and ours channels_last / ours NCHW. Peers that are not
installed are skipped with a line saying so.
"""
import argparse
import statistics
import time
from typing import Callable, Dict

import torch
from torch import nn
from torch.nn import functional as F

from resnest_mm.device import device_type, synchronize


def _ours() -> nn.Module:
    from mmengine.config import Config

    import resnest_mm.registry  # noqa: F401
    from resnest_mm.registry import MODELS
    cfg = Config.fromfile('configs/_base_/models/resnest50.py')
    model = MODELS.build(cfg.model)
    return _Logits(model)


class _Logits(nn.Module):
    """An mmpretrain classifier as ``x -> logits``."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x, mode='tensor')


def _original() -> nn.Module:
    from resnest.torch import resnest50
    return resnest50(pretrained=False)


def _timm() -> nn.Module:
    import timm
    return timm.create_model('resnest50d', pretrained=False)


def _mmpretrain() -> nn.Module:
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='ResNeSt', depth=50),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)))
    return _Logits(model)


BUILDERS: Dict[str, Callable[[], nn.Module]] = {
    'ours': _ours, 'original': _original, 'timm': _timm, 'mmpretrain': _mmpretrain}


def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype,
         device: str) -> float:
    for p in model.parameters():
        p.grad = None
    synchronize()
    start = time.perf_counter()
    with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, npu (default: the best device present)')
    parser.add_argument('--models', nargs='+', default=list(BUILDERS), choices=list(BUILDERS))
    args = parser.parse_args()
    if args.device is None:
        args.device = device_type()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = dict(fp32=torch.float32, bf16=torch.bfloat16)[args.dtype]
    models = {}
    for name in args.models:
        try:
            models[name] = BUILDERS[name]().to(args.device).train()
        except ImportError as exc:
            print(f'{name}: skipped ({exc})')
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    y = torch.randint(0, 1000, (args.batch, ), device=args.device)
    layouts = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}
    runs = {}
    for name, model in models.items():
        for layout, fmt in layouts.items():
            runs[(name, layout)] = (model, x.contiguous(memory_format=fmt), fmt)
    times = {key: [] for key in runs}
    keys = list(runs)
    for rep in range(args.repeats + 1):
        # each repetition starts one pair later, so no pair always runs first: a position's
        # effect (caches, allocator, clocks) is spread over all of them
        for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
            model, inputs, fmt = runs[key]
            model.to(memory_format=fmt)
            elapsed = step(model, inputs, y, dtype, args.device)
            if rep:  # the first round warms up
                times[key].append(elapsed)
    print(f'{args.device} {args.dtype}, batch {args.batch}, {args.size}px, '
          f'{args.threads} threads, {args.repeats} interleaved repeats; median ms per step:')
    median = {key: statistics.median(v) * 1000 for key, v in times.items()}
    for (name, layout), ms in median.items():
        print(f'  {name:10s} {layout:13s} {ms:9.1f} ms  {args.batch / ms * 1000:7.1f} img/s')
    if 'ours' not in models:
        return
    best_layout = {name: min(layouts, key=lambda lay: median[(name, lay)]) for name in models}
    best = {name: median[(name, best_layout[name])] for name in models}
    for (name, layout), ms in median.items():
        if name != 'ours':
            print(f'  ratio ours/{name} {layout}: {median[("ours", layout)] / ms:.3f}')
    peers = [n for n in models if n != 'ours']
    if peers:
        fastest = min(peers, key=best.get)
        print(f'  ratio ours best / fastest peer best ({fastest}): '
              f'{best["ours"] / best[fastest]:.3f} (goal <= 0.95)')
        # The same two (model, layout) pairs, ratio taken within each repetition: neighbours in
        # time share the machine's drift, so these spread less than the medians' ratio can.
        paired = [ours / peer for ours, peer in zip(times[('ours', best_layout['ours'])],
                                                    times[(fastest, best_layout[fastest])])]
        spread = ''
        if len(paired) >= 4:
            low, _, high = statistics.quantiles(paired, n=4)
            spread = f', quartiles {low:.3f}-{high:.3f}'
        print(f'  paired per repetition ({best_layout["ours"]} / {fastest} '
              f'{best_layout[fastest]}): median {statistics.median(paired):.3f}{spread} '
              f'over {len(paired)}')
    print(f'  ratio ours channels_last / ours nchw: '
          f'{median[("ours", "channels_last")] / median[("ours", "nchw")]:.3f} (goal <= 1)')


if __name__ == '__main__':
    main()
