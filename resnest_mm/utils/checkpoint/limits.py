"""``CheckpointLimits``: how much a checkpoint may ask of the process that reads it.

torch bounds none of this: a 1.5 MB pickle can ask for a 3 GB ``bytearray``, a 2 MB zip record
can inflate to 2 GB, and a pickle of plain dicts can cost minutes of hash collisions. Each
limit here is far above what a real checkpoint needs (a ResNeSt-269 with its optimizer state is
about 1 GB, a few thousand zip records and some 10,000 pickle instructions) and far below what
would exhaust the machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ExplainedValueError

FILE_LIMIT_ENV = 'RESNEST_MM_MAX_CHECKPOINT_GB'


@dataclass(frozen=True)
class CheckpointLimits:
    """The bounds of one checkpoint load.

    Args:
        file_bytes: The checkpoint file's size (it is read into memory). Defaults to 32 GiB,
            or ``RESNEST_MM_MAX_CHECKPOINT_GB`` gigabytes.
        digest_bytes: Its ``.sha256`` file. Defaults to 4096.
        records: Zip records. Defaults to 100,000.
        inflation_ratio: A compressed record's uncompressed size over its compressed size
            (torch writes records uncompressed: ratio 1). Defaults to 100.
        pickle_bytes: The pickle (``data.pkl``). Defaults to 64 MiB.
        pickle_ops: Pickle instructions (each builds or moves at most one object).
            Defaults to 4,000,000.
        built_bytes_per_pickle_byte: Bytes the pickle may make the reader build (bytes from
            text, numpy arrays, sets), per byte of pickle, plus 1 MiB. Defaults to 4.
        history_length: Values in one ``HistoryBuffer``. Defaults to 10,000,000.
        depth: How deep containers may nest. Defaults to 100.
    """

    file_bytes: int = 32 << 30
    digest_bytes: int = 4096
    records: int = 100_000
    inflation_ratio: int = 100
    pickle_bytes: int = 64 << 20
    pickle_ops: int = 4_000_000
    built_bytes_per_pickle_byte: int = 4
    history_length: int = 10_000_000
    depth: int = 100

    @classmethod
    def from_env(cls) -> CheckpointLimits:
        """The defaults, with the file size from ``RESNEST_MM_MAX_CHECKPOINT_GB`` when set.

        Raises:
            ExplainedValueError: the variable is not a positive number.
        """
        text = os.environ.get(FILE_LIMIT_ENV)
        if not text:
            return cls()
        try:
            gigabytes = float(text)
            if not gigabytes > 0:
                raise ValueError
        except ValueError:
            raise ExplainedValueError(f'{FILE_LIMIT_ENV}={text!r} is not a positive number of '
                                      'gigabytes (e.g. 64)') from None
        return cls(file_bytes=int(gigabytes * (1 << 30)))
