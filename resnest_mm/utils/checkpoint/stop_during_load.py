"""``stop_during_load``: a stop signal ends a checkpoint load at once, with one sentence.

What the stop handling of a run lacks here: during training, SIGTERM, SIGUSR1 and SIGINT only
set a flag that the loop reads after each iteration (``StopSignals``), so a load that takes
minutes (or never ends) cannot be stopped; outside training SIGTERM kills the process without a
word. While a checkpoint is read nothing has been changed yet, so stopping at once is safe: for
the length of the load these signals raise :class:`CheckpointLoadInterruptedError` (exit status
128 + the signal's number), and the previous handlers are put back afterwards.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Dict, Iterator

from .errors import CheckpointLoadInterruptedError

# as the run's StopSignals: SIGTERM (Slurm, Kubernetes, torchrun), SIGUSR1 (Slurm's warning
# before the end of a job's time), SIGINT (Ctrl-C)
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


@contextmanager
def stop_during_load(path: str) -> Iterator[None]:
    """Within the block, a stop signal raises :class:`CheckpointLoadInterruptedError` for ``path``.

    Python runs the handler between two bytecodes, so the load stops at its next step: the
    reader works in bounded chunks (file reads, record checks, pickle instructions). Outside
    the main thread (where Python allows no handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _stop(signum: int, frame) -> None:
        raise CheckpointLoadInterruptedError(signum, path)

    previous: Dict[int, object] = {}
    try:
        for signum in SIGNALS:
            previous[signum] = signal.signal(signum, _stop)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
