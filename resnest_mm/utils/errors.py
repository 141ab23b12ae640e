"""Errors whose message is the whole story.

Raised for bad input and for runs that must stop (a missing folder, a misspelt option, a NaN
loss): the message names the file, key or iteration and says what to do, so ``tools/train.py``
and ``tools/test.py`` print it alone, without a traceback, and exit with status 2. Each is also
an instance of the built-in type a caller would expect (``KeyError``, ``ValueError`` ...).
"""
from __future__ import annotations

import sys
from typing import Any, Callable


class ExplainedError(Exception):
    """Base class: ``str(error)`` is the sentence, never a quoted repr (as KeyError's would be).

    ``exit_code`` is the status the tools exit with: 2 (bad input) unless a subclass or the
    raiser says otherwise (a run stopped by a signal exits with 128 + its number).
    """

    exit_code = 2

    def __str__(self) -> str:
        return ' '.join(str(arg) for arg in self.args)


class RaisedInWorker:
    """Mixin (before the :class:`ExplainedError` base) for an error a data-loader worker may
    raise: torch's ``ExceptionWrapper.reraise`` rebuilds it in the main process from the worker's
    formatted traceback (``Caught X in DataLoader worker process 0. Original Traceback ...``);
    that text is cut back here to the sentence it ends with, so the tools print one sentence,
    not a worker's traceback. The subclass takes the message as its only argument."""

    def __init__(self, message: str) -> None:
        marker = f'{type(self).__name__}: '
        if message.startswith('Caught ') and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


class ExplainedKeyError(ExplainedError, KeyError):
    """A config key that does not exist."""


class ExplainedValueError(ExplainedError, ValueError):
    """A value, data set, checkpoint or config combination that cannot be used as it is."""


class ExplainedFileNotFoundError(ExplainedError, FileNotFoundError):
    """A file or folder that is not there."""


class ExplainedRuntimeError(ExplainedError, RuntimeError):
    """A machine or run state that does not allow going on (device, processes, loading)."""


class ExplainedFloatingPointError(ExplainedError, FloatingPointError):
    """A non-finite loss or weight."""


class ExplainedOSError(ExplainedError, OSError):
    """A file system state that stops a run (a full disk)."""


class ExplainedImportError(ExplainedError, ImportError):
    """An installed package of a version resnest_mm does not support."""


def run_tool(main: Callable[[], Any], prog: str) -> Any:
    """Run a tool's ``main``; an :class:`ExplainedError` becomes one line on stderr and the
    error's exit status (2 for bad input), Ctrl-C one line and status 130."""
    try:
        return main()
    except ExplainedError as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which saves and explains)
        print(f'{prog}: interrupted', file=sys.stderr, flush=True)
        sys.exit(130)
