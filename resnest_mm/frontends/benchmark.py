"""What ``tools/benchmark.py`` does: training and evaluation images/s of a config on this device.

Two measurements, and which one bounds this machine:

* **synthetic**: batches made once on the device (uint8 images of the configured crop size,
  random labels) go through the runner training builds (``tools/train.py``'s flags merged the
  same way, the same ``ResNeStRunner``, optimizer wrapper and ``before_run`` hooks, so
  ``ApexAmpHook``'s AMP, ``--amp``, ``--channels-last`` and ``--compile`` are training's): the
  model's data preprocessor, forward, backward and optimizer step (``model.train_step``), or
  the evaluation forward: the compute ceiling. The autocast dtype seen inside the step is
  reported, so a figure labelled bf16 was measured in bf16;
* **real data**: the configured training and validation data loaders (workers, pipeline) alone,
  images/s delivered: the input bound.

FPS is the seed's: images per iteration (batch x world size) divided by the mean iteration time,
warm-up iterations excluded.
"""
from __future__ import annotations

import copy
import tempfile
import time
from typing import Any, Dict, Optional

import torch
from mmengine.config import Config

from .. import device
from ..utils.mmengine_private import compile_model_step


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


def _autocast_probe(model: torch.nn.Module) -> Dict[str, str]:
    """Record the autocast dtype in effect when the model's forward first runs."""
    seen: Dict[str, str] = {}
    kind = device.device_type()

    def probe(module, args) -> None:
        if 'dtype' not in seen:
            on = torch.is_autocast_enabled(kind)
            seen['dtype'] = str(torch.get_autocast_dtype(kind)).replace('torch.', '') \
                if on else 'float32 (no autocast)'

    bare = model.module if hasattr(model, 'module') else model
    target = getattr(bare, 'backbone', bare)
    target.register_forward_pre_hook(probe)
    return seen


def synthetic(cfg: Config, iters: int, warmup: int) -> Dict[str, Any]:
    """Train-step and eval images/s of the config's model on synthetic device batches, through
    the runner and optimizer wrapper training builds (see the module docstring)."""
    from .cli import build_runner

    cfg = copy.deepcopy(cfg)
    cfg.work_dir = tempfile.mkdtemp(prefix='resnest_mm_benchmark_')
    cfg.log_level = 'WARNING'  # the figures, not the runner's start-up log
    runner = build_runner(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    # no LR schedule: it would need the data set's length, and the step costs the same
    runner.param_schedulers = None
    runner.call_hook('before_run')  # as in training (ApexAmpHook checks the AMP set-up)
    if cfg.get('compile'):
        compile_model_step(runner, 'train_step')  # what Runner.train does with cfg.compile
        compile_model_step(runner, 'test_step')
    model = runner.model
    seen = _autocast_probe(model)
    batch = cfg.train_dataloader.batch_size
    data = _synthetic_batch(batch, crop_size(cfg), cfg.model.head.num_classes)
    model.train()
    for i in range(warmup + iters):
        if i == warmup:
            device.synchronize()
            start = time.perf_counter()
        model.train_step(data, runner.optim_wrapper)
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
    return dict(train=train, eval=evaluation, autocast=seen.get('dtype', 'unknown'),
                optim_wrapper=type(runner.optim_wrapper).__name__)


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


def report(cfg: Config, iters: int, warmup: int, real: bool) -> Dict[str, Any]:
    """Measure and print; returns the figures (images/s per device) and the autocast dtype."""
    kind = device.device_type()
    channels_last = bool(cfg.get('channels_last'))
    print(f'{cfg.filename}: {kind}, batch {cfg.train_dataloader.batch_size} per device, '
          f'channels_last={channels_last}, compile={bool(cfg.get("compile"))}, '
          f'{iters} timed iterations after {warmup} warm-up')
    figures: Dict[str, Any] = {}
    ceiling = synthetic(cfg, iters, warmup)
    figures.update({f'synthetic_{k}': v for k, v in ceiling.items() if k in ('train', 'eval')})
    figures.update(autocast=ceiling['autocast'], optim_wrapper=ceiling['optim_wrapper'])
    print(f'  optimizer wrapper {ceiling["optim_wrapper"]}, autocast seen in the train step: '
          f'{ceiling["autocast"]}')
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
