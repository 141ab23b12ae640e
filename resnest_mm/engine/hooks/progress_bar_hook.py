"""Progress of training, validation and test: a bar on a terminal, a line every few percent
elsewhere."""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import IO, Optional

from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.runner.loops import IterBasedTrainLoop
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ...registry import HOOKS
from ...utils.task_progress import clock

MODES = ('auto', 'bar', 'lines', 'off')


def _batch_size(data_batch) -> int:
    """Samples in a batch as the loader gives it (``inputs`` a tensor or a list)."""
    inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
    try:
        return len(inputs) if inputs is not None else 0
    except TypeError:
        return 0


class _WipeBeforeLog(logging.Filter):
    """A filter on the logger's terminal handler: wipes the bar before a line is printed, so
    that no log line (the logger's, a checkpoint's, a warning) lands after the bar's text."""

    def __init__(self, hook: ProgressBarHook) -> None:
        super().__init__()
        self.hook = hook

    def filter(self, record: logging.LogRecord) -> bool:
        self.hook._wipe()
        return True


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Where a run is: epoch, iteration, img/s, ETA and loss while training, batches done and
    ETA while validating or testing (main process only).

    What MMEngine lacks: its ``LoggerHook`` prints a line every ``interval`` iterations (100 in
    our configs): nothing for minutes at the start of a run, and no way to see the speed or the
    end of the epoch in between. On a terminal this draws one line with rich's progress columns,
    redrawn in place (at most ``refresh`` times a second, with no thread of its own) and wiped
    by a filter on the logger's terminal handler just before any log line is printed. Off a
    terminal (a log file, Slurm) a bar would write a line per redraw, so it writes one plain
    line every ``percent`` % of the epoch or evaluation instead.

    Args:
        train (bool): During training. Defaults to True.
        val (bool): During validation in training. Defaults to True.
        test (bool): During ``tools/test.py``. Defaults to True.
        mode (str): ``'auto'`` (a bar when stdout is a terminal, else lines), ``'bar'``,
            ``'lines'`` or ``'off'``. Defaults to ``'auto'``.
        percent (float): Off a terminal, a line every this many percent. Defaults to 10.
        refresh (float): On a terminal, redraws per second at most. Defaults to 4.
    """

    priority = 'NORMAL'

    def __init__(self, train: bool = True, val: bool = True, test: bool = True,
                 mode: str = 'auto', percent: float = 10., refresh: float = 4.) -> None:
        if mode not in MODES:
            raise ValueError(f'ProgressBarHook: mode={mode!r} is not one of {", ".join(MODES)}')
        if not 0 < percent <= 100:
            raise ValueError(f'ProgressBarHook: percent={percent!r} must be in (0, 100]')
        self.enabled = dict(train=train, val=val, test=test)
        self.mode = mode
        self.percent = percent
        self.refresh = refresh
        self._stream: IO = sys.stdout
        self._progress: Optional[Progress] = None
        self._task = None
        self._phase = ''
        self._total = 0
        self._done = 0
        self._first = 0
        self._images = 0
        self._start = 0.
        self._drawn_at = -math.inf
        self._next_line = 0
        self._wiper = _WipeBeforeLog(self)
        self._handlers: list = []

    # -- what to show -------------------------------------------------------------------------
    def _bar_mode(self) -> bool:
        if self.mode == 'auto':
            isatty = getattr(self._stream, 'isatty', None)
            return bool(isatty and isatty())
        return self.mode == 'bar'

    def _rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self._images / elapsed if elapsed > 0 else 0.

    def _eta(self) -> Optional[float]:
        elapsed = time.monotonic() - self._start
        done_here = self._done - self._first  # a resumed epoch starts part done
        if done_here <= 0:
            return None
        return elapsed / done_here * (self._total - self._done)

    def _begin(self, runner, phase: str, total: int, done: int = 0, title: str = '') -> None:
        if self.mode == 'off' or not self.enabled[phase] or not is_main_process():
            return
        self._stream = sys.stdout
        self._phase, self._total, self._done, self._images = phase, total, done, 0
        self._first = done
        self._start = time.monotonic()
        self._drawn_at = -math.inf
        step = max(1, math.ceil(total * self.percent / 100))
        self._next_line = (done // step + 1) * step
        self._title = title
        if self._bar_mode():
            self._progress = Progress(
                TextColumn('{task.description}'), BarColumn(bar_width=None),
                MofNCompleteColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                TextColumn('ETA'), TimeRemainingColumn(), TextColumn('{task.fields[extra]}'),
                console=Console(file=self._stream, force_terminal=True), auto_refresh=False)
            self._task = self._progress.add_task(title, total=total, completed=done, extra='')
            # the handlers that print on the bar's terminal
            self._handlers = [h for h in runner.logger.handlers
                              if isinstance(h, logging.StreamHandler)
                              and not isinstance(h, logging.FileHandler)
                              and getattr(h, 'stream', None) in (self._stream, sys.__stdout__,
                                                                 sys.stderr)]
            for handler in self._handlers:
                handler.addFilter(self._wiper)
        else:
            self._progress = None
            self._task = phase  # lines mode: any non-None marks an active run

    def _extra(self, runner) -> str:
        parts = [f'{self._rate():.1f} img/s'] if self._images else []
        if self._phase == 'train':
            loss = runner.message_hub.get_scalar('train/loss') \
                if 'train/loss' in runner.message_hub.log_scalars else None
            if loss is not None:
                parts.append(f'loss {loss.current():.4f}')
        return '  '.join(parts)

    def _step(self, runner, data_batch) -> None:
        if self._task is None:
            return
        self._done += 1
        self._images += _batch_size(data_batch) * get_world_size()
        now = time.monotonic()
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done, extra=self._extra(runner))
            if now - self._drawn_at >= 1 / self.refresh or self._done == self._total:
                self._draw()
                self._drawn_at = now
        elif self._done >= self._next_line or self._done == self._total:
            self._line(runner)
            step = max(1, math.ceil(self._total * self.percent / 100))
            self._next_line = (self._done // step + 1) * step

    def _draw(self) -> None:
        """The bar, over the line it was drawn on before (rich renders, we place it)."""
        console = self._progress.console
        self._stream.write('\r')
        with console.capture() as capture:
            console.print(self._progress.get_renderable(), end='', crop=True,
                          width=max(console.width - 1, 20), no_wrap=True, overflow='crop')
        self._stream.write(capture.get().split('\n')[0] + '\x1b[K')
        self._stream.flush()

    def _wipe(self) -> None:
        if self._progress is not None and self._drawn_at > -math.inf:
            self._stream.write('\r\x1b[K')
            self._stream.flush()
            self._drawn_at = -math.inf  # redrawn at the next step

    def _line(self, runner) -> None:
        share = 100 * self._done / self._total if self._total else 100.
        text = (f'{self._title} {self._done}/{self._total} ({share:.0f}%)  '
                f'elapsed {clock(time.monotonic() - self._start)}  ETA {clock(self._eta())}')
        extra = self._extra(runner)
        if extra:
            text += '  ' + extra
        self._stream.write(text + '\n')
        self._stream.flush()

    def _end(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._wiper)
        self._handlers = []
        if self._progress is not None:
            self._draw()
            self._stream.write('\n')
            self._stream.flush()
        self._progress = self._task = None

    # -- training -----------------------------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):  # no epochs: one bar over all iterations
            self._begin(runner, 'train', loop.max_iters, runner.iter, 'Train')
            return
        done = getattr(loop, 'batches_done', 0) or 0  # a resumed epoch starts part done
        title = f'Epoch {runner.epoch + 1}/{loop.max_epochs}'
        self._begin(runner, 'train', len(loop.dataloader), done, title)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._task is None:
            return
        self._step(runner, data_batch)

    def after_train_epoch(self, runner) -> None:
        if self._phase == 'train':
            self._end()

    # -- evaluation ---------------------------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        self._begin(runner, 'val', len(runner.val_loop.dataloader), title='Validation')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._task is None:
            return
        self._step(runner, data_batch)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._phase == 'val':
            self._end()

    def before_test_epoch(self, runner) -> None:
        self._begin(runner, 'test', len(runner.test_loop.dataloader), title='Test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.after_val_iter(runner, batch_idx, data_batch, outputs)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._phase == 'test':
            self._end()
