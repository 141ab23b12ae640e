"""``StopSignals``: SIGTERM, SIGUSR1 and SIGINT become a request to save and stop, agreed by all
ranks at an iteration boundary."""
from __future__ import annotations

import signal
import threading
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, is_distributed

# SIGTERM: what Slurm, Kubernetes and torchrun send before killing; SIGUSR1: what Slurm's
# --signal=USR1@SECONDS sends ahead of the end of a job's time; SIGINT: Ctrl-C.
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class StopSignals:
    """Turn the stop signals into a flag the training loop reads after each iteration.

    What neither mmengine nor torch has: on SIGTERM a Runner dies at once (the iterations since
    the last checkpoint are lost) and SIGINT gives a long ``KeyboardInterrupt`` traceback. Here
    the handler only records the signal; :meth:`agreed` (called by every rank after every
    iteration) all-reduces it, so all ranks stop after the same iteration even when the signal
    reached them at different moments, or only one of them. A second SIGINT raises
    ``KeyboardInterrupt`` at once (the user insists).
    """

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    @property
    def installed(self) -> bool:
        """Whether the handlers are in place (a training run is under way)."""
        return bool(self._previous)

    def install(self) -> None:
        """Handle the signals in this process (main thread only: Python's rule for handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self.received = None
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum

    def agreed(self) -> Optional[int]:
        """The signal every rank now acts on (the largest number any rank received), or None.

        Collective when distributed: every rank must call it at the same point.
        """
        local = int(self.received or 0)
        if is_distributed():
            flag = torch.tensor([local], dtype=torch.int64)
            all_reduce(flag, op='max')
            local = int(flag.item())
        return local or None
