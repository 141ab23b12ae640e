"""The errors of checkpoint loading: one sentence each, naming the file."""
from __future__ import annotations

import signal

from ..errors import ExplainedError, ExplainedFileNotFoundError


class CheckpointError(ExplainedError, ValueError):
    """A checkpoint that must not be used: damaged, truncated, not a checkpoint, or code."""


class CheckpointNotFoundError(ExplainedFileNotFoundError, CheckpointError):
    """A checkpoint that is not there (a ``FileNotFoundError`` and a :class:`CheckpointError`)."""


class CheckpointLoadInterruptedError(ExplainedError):
    """A stop signal arrived while a checkpoint was read; exits with 128 + its number."""

    def __init__(self, signum: int, path: str) -> None:
        name = signal.Signals(signum).name
        super().__init__(f'{name} received while reading the checkpoint {path}: stopped before '
                         'anything was loaded, trained or written; run the same command again '
                         'to continue')
        self.signum = signum
        self.exit_code = 128 + int(signum)


class RefusedError(Exception):
    """Raised inside the reader for what a checkpoint must not hold; the reader turns it into
    a :class:`CheckpointError` naming the file.

    Args:
        reason: What the file holds or asks, e.g. ``'it holds posix.system'``.
        code: True when the reason is code or a type outside the data types (``--unsafe-load``
            would run it), False for a bound exceeded.
        unsafe_helps: Whether ``--unsafe-load`` (which skips the pickle's bounds, not the
            file's) would read the file. Defaults to True.
    """

    def __init__(self, reason: str, code: bool = False, unsafe_helps: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.unsafe_helps = unsafe_helps
