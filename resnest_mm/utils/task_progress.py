"""Progress of a long tool (verify, prepare): a bar on a terminal, a line every few percent off it.

mmengine's ``ProgressBar`` redraws its line with ``\\r`` after every item: into a redirected
log (Slurm, ``> log``) that is about 80 bytes per file, 100 MB for ImageNet's 1.3 million
images. Here a terminal gets rich's bar (rich is already an mmengine dependency) and anything
else a plain line each time another ``every_percent`` of the work is done.
"""
from __future__ import annotations

import datetime
import math
import sys
import time
from typing import IO, Optional


def clock(seconds: Optional[float]) -> str:
    """A duration as ``H:MM:SS`` (``1 day, 2:03:04`` past a day), by ``datetime.timedelta``;
    ``-:--:--`` when it is not known (None, NaN, infinite). Negative counts as 0."""
    if seconds is None or not math.isfinite(seconds):
        return '-:--:--'
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class TaskProgress:
    """Count work done; show it as a bar (terminal) or as a few lines (log file).

    Use as a context manager: ``with TaskProgress(total, 'verify') as progress: ...
    progress.update()``.

    Args:
        total: Items expected (may be exceeded: the count goes on, the lines stop at 100%).
        description: Words naming the work, at the start of each line.
        stream: Where to write. Defaults to ``sys.stdout``.
        every_percent: Off a terminal, a line each time this share of ``total`` is done.
            Defaults to 5.
        terminal: Draw a bar; None asks ``stream.isatty()``. Defaults to None.
    """

    def __init__(self, total: int, description: str, stream: Optional[IO[str]] = None,
                 every_percent: float = 5, terminal: Optional[bool] = None) -> None:
        self.total = max(0, int(total))
        self.description = description
        self.stream = stream or sys.stdout
        self.every = max(1e-9, every_percent)
        self.done = 0
        self._next_percent = self.every
        self._start = time.monotonic()
        self._bar = None
        if terminal if terminal is not None else self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self._bar = Progress(TextColumn('{task.description}'), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=Console(file=self.stream))
            self._task = self._bar.add_task(description, total=self.total or None)
            self._bar.start()

    def update(self, count: int = 1) -> None:
        """Note ``count`` more items done."""
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, advance=count)
            return
        if not self.total:
            return
        percent = 100 * self.done / self.total
        if percent + 1e-9 < self._next_percent:
            return
        while self._next_percent <= percent + 1e-9:
            self._next_percent += self.every
        if percent >= 100:
            self._next_percent = float('inf')  # one line at 100%, then quiet
        elapsed = time.monotonic() - self._start
        left = elapsed * (self.total - self.done) / self.done if self.done < self.total else 0
        self.stream.write(f'{self.description}: {min(percent, 100):.0f}% ({self.done:,}/'
                          f'{self.total:,}), {clock(elapsed)} elapsed, '
                          f'{clock(left)} left\n')
        self.stream.flush()

    def close(self) -> None:
        """End the bar (a terminal); the lines need no ending."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> TaskProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
