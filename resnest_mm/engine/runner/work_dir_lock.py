"""``WorkDirLock``: one training run per work dir."""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from typing import Optional

from ...utils.errors import ExplainedRuntimeError

LOCK_NAME = '.train.lock'


class WorkDirLock:
    """An exclusive ``flock`` on ``<work_dir>/.train.lock``, held while a run trains.

    What mmengine lacks: two runs started in one work dir both write its checkpoints and
    ``last_checkpoint`` (and the same log file when they start in the same second), each
    pruning the other's files. The lock is the kernel's, so it is released when its process
    dies however it dies (SIGKILL included): a lock file left by a dead process is taken over,
    and the log says whose it was. The file holds the holder's PID, host and start time, which a
    refused second run quotes.

    Args:
        work_dir (str): The run's work dir.
    """

    def __init__(self, work_dir: str) -> None:
        self.path = os.path.join(work_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, logger=None) -> None:
        """Take the lock, or refuse in one sentence naming the run that holds it.

        Raises:
            ExplainedRuntimeError: another live process holds the lock.
        """
        if self._fd is not None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a folder of that name, a read-only work dir
            raise ExplainedRuntimeError(
                f'{self.path}, the work dir\'s lock file, cannot be opened ({exc.strerror}): '
                'move or remove what is there, make the work dir writable, or give this run '
                'another --work-dir.') from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read(fd)
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                if logger is not None:  # NFS without lockd, Lustre mounted noflock ...
                    logger.warning(f'{self.path}: this file system cannot lock files '
                                   f'({exc.strerror}); a second run in this work dir would '
                                   'not be refused')
                return
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise ExplainedRuntimeError(
                f'{os.path.dirname(self.path)} is in use by another training run '
                f'({holder or "holder unknown"}; lock {self.path}). Two runs in one work dir '
                'overwrite each other\'s checkpoints: wait for it to end, stop it, or give '
                'this run its own --work-dir.') from None
        previous = _read(fd)
        if previous and logger is not None:
            logger.info(f'took over {self.path}, left by a run that no longer holds it '
                        f'({previous})')
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f'pid {os.getpid()} on {socket.gethostname()} since '
                       f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n').encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the work dir go (the file stays, empty and unlocked: only a process that died
        holding the lock leaves its name in it)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 512, 0).decode('utf-8', 'replace').strip()
    except OSError:
        return ''
