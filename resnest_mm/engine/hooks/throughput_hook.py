"""FPS as the seed script measured it."""
from __future__ import annotations

import time
from typing import List, Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from ...registry import HOOKS


@HOOKS.register_module()
class ThroughputHook(Hook):
    """Images per second, defined as the seed defined it, logged at every log interval.

    An iteration's time runs from the end of the previous iteration to the end of this one, so it
    includes the wait for data and the step (mmengine's ``RuntimeInfoHook`` has already read the
    loss with ``.item()``, which waits for the device, as the seed's ``loss.item()`` did). The
    first ``skip_iters`` iterations of every epoch (worker start-up, warm-up) are left out, and

        FPS = batch_size_per_device * world_size / mean(iteration time).

    A run too short to have any iteration past those is measured over all its iterations.

    mmengine's ``IterTimerHook`` logs ``time`` and ``data_time`` per iteration but no images per
    second over a run, which is the number the seed reports and users compare.

    The value goes to the message hub as ``train/fps`` / ``test/fps`` (logged by ``LoggerHook``)
    and to the runtime info as ``fps_train`` / ``fps_test`` for :class:`RunSummaryHook`.

    Args:
        skip_iters (int): Iterations at the start of each epoch not counted. Defaults to 2.
    """

    priority = 'LOW'  # after RuntimeInfoHook (VERY_HIGH) has synchronised on the loss

    def __init__(self, skip_iters: int = 2) -> None:
        self.skip_iters = skip_iters
        self._times: List[float] = []
        self._skipped: List[float] = []
        self._last: Optional[float] = None
        self._epoch_iter = 0

    def _start_epoch(self) -> None:
        self._last = time.perf_counter()
        self._epoch_iter = 0

    def _tick(self, runner, mode: str, batch_size: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            counted = self._epoch_iter >= self.skip_iters
            (self._times if counted else self._skipped).append(now - self._last)
        self._last = now
        self._epoch_iter += 1
        times = self._times or self._skipped
        if times:
            fps = batch_size * get_world_size() * len(times) / sum(times)
            runner.message_hub.update_scalar(f'{mode}/fps', fps)
            runner.message_hub.update_info(f'fps_{mode}', fps)

    def _reset(self) -> None:
        self._times, self._skipped = [], []

    def before_train(self, runner) -> None:
        self._reset()

    def before_train_epoch(self, runner) -> None:
        self._start_epoch()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._tick(runner, 'train', runner.train_dataloader.batch_size)

    def before_test_epoch(self, runner) -> None:
        self._reset()
        self._start_epoch()

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._tick(runner, 'test', runner.test_dataloader.batch_size)
