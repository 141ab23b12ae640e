"""``LogFileHandler``: the run's log file, which says when the disk is full instead of printing
a traceback for every line."""
from __future__ import annotations

import logging
import sys
from typing import Optional

from .fileio import NO_ROOM


class LogFileHandler(logging.FileHandler):
    """``logging.FileHandler`` that records a write refused for lack of space.

    What the standard library lacks: a handler whose write fails calls ``handleError``, which
    prints ``--- Logging error ---`` and a traceback on stderr for every later record, and the
    run goes on logging into nothing. Here the first such error is kept in :attr:`failure` (the
    runner stops the run with one sentence naming the file at its next hook) and later records
    are dropped quietly. Other errors keep the standard behaviour.
    """

    failure: Optional[OSError] = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            if self.failure is None:
                self.failure = exc
            return
        super().handleError(record)

    @classmethod
    def replacing(cls, handler: logging.FileHandler) -> LogFileHandler:
        """A handler appending to ``handler``'s file with its level, format and filters (the
        caller swaps the two on the logger and closes the old one)."""
        new = cls(handler.baseFilename, mode='a', encoding=handler.encoding)
        new.setLevel(handler.level)
        new.setFormatter(handler.formatter)
        for log_filter in handler.filters:
            new.addFilter(log_filter)
        return new
