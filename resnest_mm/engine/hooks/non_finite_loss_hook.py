"""``NonFiniteLossHook``: stop at the first NaN/inf loss, with a sentence, before it is saved."""
from __future__ import annotations

import math
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_rank, is_distributed
from mmengine.hooks import Hook

from ... import compat
from ...registry import HOOKS
from ...utils.errors import ExplainedFloatingPointError
from ..loops import last_checkpoint


def _last_checkpoint(runner) -> str:
    return last_checkpoint(runner.work_dir) or 'none yet (the run has not saved one)'


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop the run at the first non-finite loss and never save non-finite weights.

    What MMEngine lacks: it trains on through NaN losses (the weights turn NaN, the next
    checkpoints overwrite the good ones) until someone reads the log. Here:

    * after every iteration the loss is checked (the logger reads it from the device every
      iteration anyway, so this adds no synchronisation); a NaN or inf loss raises
      ``FloatingPointError`` naming the iteration, the epoch and the last good checkpoint,
      before any checkpoint of that iteration is written (this hook runs first);
    * before a checkpoint is written, its weights are checked too (a finite loss can still come
      with infinite gradients without loss scaling);
    * under dynamic loss scaling (``AmpOptimWrapper``), steps the scaler skipped because of
      inf/NaN gradients are normal: they are only counted, logged once an epoch and kept in the
      message hub as ``skipped_steps``.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._scale: Optional[float] = None
        self._skipped_epoch = 0

    @staticmethod
    def _scaler(runner):
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if compat.is_grad_scaler(scaler) and scaler.is_enabled():
            return scaler
        return None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        scaler = self._scaler(runner)
        self._scale = scaler.get_scale() if scaler is not None else None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is not None:
            value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
            stop = not math.isfinite(value)
            if is_distributed():
                # Each rank has its own loss: agree, so that all ranks stop together instead of
                # the others waiting in DDP's next all-reduce.
                bad = torch.tensor(float(stop), device=loss.device)
                all_reduce(bad, op='sum')
                stop = bool(bad.item())
            if stop:
                what = (f'the loss is {value}' if not math.isfinite(value) else
                        f'the loss is not finite on another rank (rank {get_rank()} has {value})')
                raise ExplainedFloatingPointError(
                    f'Iteration {runner.iter + 1} (epoch {runner.epoch + 1}): {what}; training '
                    'stopped before saving anything from this step. The last good checkpoint '
                    f'is {_last_checkpoint(runner)}. Lower the learning rate, turn on AMP loss '
                    'scaling or check the data, then continue from it with tools/train.py '
                    'CONFIG --resume.')
        scaler = self._scaler(runner)
        if scaler is not None and self._scale is not None and scaler.get_scale() < self._scale:
            self._skipped_epoch += 1
            total = runner.message_hub.runtime_info.get('skipped_steps', 0) + 1
            runner.message_hub.update_info('skipped_steps', total)

    def after_train_epoch(self, runner) -> None:
        if self._skipped_epoch:
            runner.logger.info(
                f'{self._skipped_epoch} optimizer step(s) skipped this epoch by dynamic loss '
                'scaling (inf/NaN gradients at the current scale; normal, the scale adapts)')
        self._skipped_epoch = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for name, value in checkpoint.get('state_dict', {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and \
                    not torch.isfinite(value).all():
                raise ExplainedFloatingPointError(
                    f'Iteration {runner.iter + 1} (epoch {runner.epoch + 1}): weight {name} is '
                    f'not finite, so no checkpoint was written. The last good checkpoint is '
                    f'{_last_checkpoint(runner)}. Lower the learning rate or turn on AMP loss '
                    'scaling, then continue from it with tools/train.py CONFIG --resume.')
