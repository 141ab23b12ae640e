"""``<work_dir>/summary.json`` at the end of every train or test run."""
from __future__ import annotations

import json
import os
from typing import Optional

from mmengine.dist import get_world_size, master_only
from mmengine.hooks import Hook

from ... import device
from ...registry import HOOKS
from ...utils import atomic_write
from .. import amp_policy


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Write the figures a run is judged by to ``<work_dir>/summary.json``.

    The seed grepped its logs into ``*_perf.log`` / ``*_acc.log``; this writes one JSON file with
    ``fps``, ``accuracy/top1``, ``accuracy/top5`` (when evaluated), ``epochs``, ``iters`` (the
    run's totals), ``iters_this_process`` (the iterations this process trained: fewer than
    ``iters`` after a resume), ``world_size``, ``device``, ``amp``, ``batch_size_per_device``
    and ``config``, plus ``mode`` (``train`` or ``test``) and ``checkpoint`` for a test.
    mmengine writes metrics only into its scalar logs. The file is replaced atomically and
    written by rank 0 only.

    Args:
        filename (str): Name of the file in the work dir. Defaults to ``summary.json``.
    """

    priority = 'VERY_LOW'

    def __init__(self, filename: str = 'summary.json') -> None:
        self.filename = filename
        self._metrics: dict = {}
        self._ckpt_meta: dict = {}
        self._trained = 0

    def before_train(self, runner) -> None:
        self._trained = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._trained += 1

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._ckpt_meta = dict(checkpoint.get('meta') or {})

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._metrics = dict(metrics or {})

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._metrics = dict(metrics or {})

    def after_train(self, runner) -> None:
        amp = amp_policy.runs_mixed_precision(runner.optim_wrapper)
        self._write(runner, 'train', runner.train_dataloader.batch_size, runner.epoch,
                    runner.iter, amp, iters_this_process=self._trained)

    def after_test(self, runner) -> None:
        amp = bool((runner.cfg.get('test_cfg') or {}).get('fp16', False))
        self._write(runner, 'test', runner.test_dataloader.batch_size,
                    self._ckpt_meta.get('epoch'), self._ckpt_meta.get('iter'), amp,
                    checkpoint=runner.cfg.get('load_from'))

    @master_only
    def _write(self, runner, mode: str, batch_size: int, epochs, iters, amp: bool,
               **extra) -> None:
        summary = {
            'mode': mode,
            'fps': runner.message_hub.get_info(f'fps_{mode}'),
            **{k: v for k, v in self._metrics.items() if k.startswith('accuracy/')},
            'epochs': epochs,
            'iters': iters,
            'world_size': get_world_size(),
            'device': device.device_type(),
            'amp': amp,
            'batch_size_per_device': batch_size,
            'config': runner.cfg.filename,
            **extra,
        }
        path = os.path.join(runner.work_dir, self.filename)
        atomic_write(path, lambda f: f.write(json.dumps(summary, indent=2).encode('utf-8')))
        runner.logger.info(f'summary written to {path}: ' + json.dumps(summary))
