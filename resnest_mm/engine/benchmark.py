"""What ``tools/benchmark.py`` does: training and evaluation images/s of a config on this device.

Two measurements, and which one bounds this machine:

* **synthetic**: batches made once on the device (uint8 images of the configured crop size,
  random labels) go through the model's data preprocessor, forward, backward and optimizer
  step (``model.train_step`` with the config's optimizer wrapper, AMP included) or through the
  evaluation forward: the compute ceiling;
* **real data**: the configured training and validation data loaders (workers, pipeline) alone,
  images/s delivered: the input bound.

FPS is the seed's: images per iteration (batch x world size) divided by the mean iteration time,
warm-up iterations excluded.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import torch
from mmengine.config import Config

from .. import device


def crop_size(cfg: Config) -> int:
    """The training crop side of the config's pipeline (224 for the ImageNet configs)."""
    for transform in cfg.train_dataloader.dataset.pipeline:
        scale = transform.get('scale', transform.get('crop_size'))
        if scale is not None and 'Crop' in transform['type']:
            return int(scale if isinstance(scale, int) else scale[0])
    return 224


def _synthetic_batch(batch: int, size: int, num_classes: int) -> dict:
    from mmpretrain.structures import DataSample
    target = device.device_type()
    inputs = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=target)
    labels = torch.randint(0, num_classes, (batch, ))
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    return dict(inputs=list(inputs), data_samples=samples)


def synthetic(cfg: Config, iters: int, warmup: int, channels_last: bool = False,
              compile: bool = False) -> Dict[str, float]:
    """Train-step and eval images/s of the config's model on synthetic device batches.

    ``channels_last`` converts the whole model (any backbone) to NHWC; ``compile`` wraps
    ``train_step`` and ``test_step`` in ``torch.compile`` as MMEngine's ``cfg.compile`` does
    (compilation happens in the warm-up iterations).
    """
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    import resnest_mm.registry  # noqa: F401
    from resnest_mm.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'resnest_mm')):
        model = MODELS.build(cfg.model).to(device.device_type())
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        model.train_step = torch.compile(model.train_step)
        model.test_step = torch.compile(model.test_step)
    batch = cfg.train_dataloader.batch_size
    data = _synthetic_batch(batch, crop_size(cfg), cfg.model.head.num_classes)
    model.train()
    for i in range(warmup + iters):
        if i == warmup:
            device.synchronize()
            start = time.perf_counter()
        model.train_step(data, optim_wrapper)
    device.synchronize()
    train = batch * iters / (time.perf_counter() - start)
    val_loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if val_loader and val_loader.get('batch_size', batch) != batch:
        batch = val_loader['batch_size']
        data = _synthetic_batch(batch, crop_size(cfg), cfg.model.head.num_classes)
    model.eval()
    with torch.no_grad():
        for i in range(warmup + iters):
            if i == warmup:
                device.synchronize()
                start = time.perf_counter()
            model.test_step(data)
        device.synchronize()
    evaluation = batch * iters / (time.perf_counter() - start)
    return dict(train=train, eval=evaluation)


def loader(cfg: Config, name: str, iters: int, warmup: int) -> Optional[float]:
    """Images/s the configured data loader ``name`` delivers (None when it yields nothing)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from .preflight import check_datasets
    check_datasets(cfg, (name, ))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'resnest_mm')):
        data_loader = Runner.build_dataloader(cfg[name], seed=0)
    images, start, done = 0, None, 0
    while done < warmup + iters:  # as many epochs as a small data set needs
        for batch in data_loader:
            if done == warmup:
                start, images = time.perf_counter(), 0
            images += len(batch['inputs'])
            done += 1
            if done >= warmup + iters:
                break
        if done == 0:
            return None  # an empty loader
    return images / (time.perf_counter() - start)


def report(cfg: Config, iters: int, warmup: int, real: bool, channels_last: bool = False,
           compile: bool = False) -> Dict[str, Optional[float]]:
    """Measure and print; returns the figures (images/s per device)."""
    kind = device.device_type()
    amp = cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'
    print(f'{cfg.filename}: {kind}, batch {cfg.train_dataloader.batch_size} per device, '
          f'amp={amp}, channels_last={channels_last}, compile={compile}, '
          f'{iters} timed iterations after {warmup} warm-up')
    figures: Dict[str, Optional[float]] = {}
    ceiling = synthetic(cfg, iters, warmup, channels_last=channels_last, compile=compile)
    figures.update({f'synthetic_{k}': v for k, v in ceiling.items()})
    print(f'  synthetic data on the device: train {ceiling["train"]:.1f} img/s (FPS), '
          f'eval {ceiling["eval"]:.1f} img/s (the compute ceiling)')
    if not real:
        return figures
    for split, name in (('train', 'train_dataloader'), ('eval', 'val_dataloader')):
        if not cfg.get(name):
            continue
        rate = loader(cfg, name, iters, warmup)
        figures[f'loader_{split}'] = rate
        if rate is None:
            print(f'  {name}: no batches, not measured')
            continue
        bound = 'input-bound' if rate < ceiling[split] else 'compute-bound'
        print(f'  {name} ({cfg[name].get("num_workers", 0)} workers): {rate:.1f} img/s '
              f'-> {split} on this machine is {bound} '
              f'({min(rate, ceiling[split]):.1f} img/s at best)')
    return figures
