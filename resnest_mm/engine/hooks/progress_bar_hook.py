"""A progress bar over validation and test batches."""
from __future__ import annotations

import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook, LoggerHook
from mmengine.utils import ProgressBar

from ...registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show batches done, speed and ETA while a model is evaluated (main process only).

    What MMEngine lacks: its ``LoggerHook`` prints evaluation progress only every ``interval``
    batches (100 in our configs), so a test on a small set or at the start of a large one shows
    nothing for minutes. This draws MMEngine's ``ProgressBar`` (the one mmpretrain's tools use)
    over the batches of each validation and test run, then ends its line.

    Args:
        val (bool): During validation in training. Defaults to True.
        test (bool): During ``tools/test.py``. Defaults to True.
    """

    # Before LoggerHook (BELOW_NORMAL): the bar's line is ended before the logger prints.
    priority = 'NORMAL'

    def __init__(self, val: bool = True, test: bool = True) -> None:
        self.val = val
        self.test = test
        self._bar: Optional[ProgressBar] = None
        self._log_interval = 0

    def _start(self, runner, enabled: bool, loader) -> None:
        if enabled and is_main_process():
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self._log_interval = loggers[0].interval if loggers else 0
            self._bar = ProgressBar(len(loader), file=sys.stdout)

    def _step(self, batch_idx: int) -> None:
        if self._bar is not None:
            self._bar.update()
            if self._log_interval and (batch_idx + 1) % self._log_interval == 0:
                sys.stdout.write('\n')  # LoggerHook prints its line now: give it its own

    def _end(self) -> None:
        if self._bar is not None:
            if not (self._log_interval and self._bar.completed % self._log_interval == 0):
                sys.stdout.write('\n')
            sys.stdout.flush()
            self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, self.val, runner.val_loop.dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step(batch_idx)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end()

    def before_test_epoch(self, runner) -> None:
        self._start(runner, self.test, runner.test_loop.dataloader)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step(batch_idx)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end()
