"""``scan_pickles``: a checkpoint's pickles read as instructions, never executed, before any
object is built.

What ``torch.load`` lacks: it unpickles whatever instructions a file holds, as many as there
are. Here :mod:`pickletools` walks them first, under a cap on their number (each instruction
builds or moves at most one object, so the cap bounds the objects and the time of the real
load), and every global a pickle names must be one the restricted reader rebuilds
(:data:`~.data_types.ALLOWED_GLOBALS`), so a file that names ``os.system`` is refused by name
without a byte of it being unpickled.
"""
from __future__ import annotations

import _compat_pickle
import io
import pickletools
from typing import BinaryIO, Callable, Optional

from .errors import RefusedError
from .limits import CheckpointLimits

# instructions no checkpoint of data needs: objects of pickle protocols 0/1 (INST, OBJ),
# copyreg's extension registry, text persistent ids, out-of-band buffers
REFUSED_OPS = frozenset({'INST', 'OBJ', 'EXT1', 'EXT2', 'EXT4', 'PERSID', 'NEXT_BUFFER',
                         'READONLY_BUFFER'})


def global_name(module: str, name: str) -> str:
    """``module.name`` as Python 3 names it (torch writes pickle protocol 2, whose names are
    Python 2's: ``__builtin__.getattr``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f'{module}.{name}'


def scan_pickles(file: BinaryIO, count: int, allowed: Callable[[str], bool],
                 limits: CheckpointLimits,
                 between: Optional[Callable[[], None]] = None) -> int:
    """Walk ``count`` consecutive pickles of ``file`` (``data.pkl``: 1; a legacy file: 5).

    Args:
        file: Positioned at the first pickle; left after the last one.
        count: How many pickles.
        allowed: Whether a global (``module.name``) may be named.
        limits: ``pickle_ops`` caps the instructions of all of them together.
        between: Called every 65,536 instructions (a stop request). Defaults to None.

    Returns:
        The number of instructions.

    Raises:
        RefusedError: too many instructions, a global outside ``allowed``, or an instruction no
            checkpoint needs.
        ValueError: not a pickle (truncated or damaged).
    """
    ops = 0
    for _ in range(count):
        strings: list = []
        for op, arg, _pos in pickletools.genops(file):
            ops += 1
            if ops > limits.pickle_ops:
                raise RefusedError(f'its pickle has more than {limits.pickle_ops:,} instructions')
            if not ops & 0xFFFF and between is not None:
                between()
            name = op.name
            if name in REFUSED_OPS:
                raise RefusedError(f'it uses the pickle instruction {name}', code=True)
            if name == 'GLOBAL':
                module, _, attr = str(arg).partition(' ')
                _check_global(global_name(module, attr), allowed)
            elif name == 'STACK_GLOBAL' and len(strings) >= 2:
                # the two strings pushed last (memoised ones are checked when they are loaded)
                _check_global(f'{strings[-2]}.{strings[-1]}', allowed)
            if isinstance(arg, str):
                strings = strings[-1:] + [arg]
    return ops


def _check_global(name: str, allowed: Callable[[str], bool]) -> None:
    if not allowed(name):
        raise RefusedError(f'it holds {name}', code=True)


def scan_bytes(data: bytes, allowed: Callable[[str], bool], limits: CheckpointLimits,
               between: Optional[Callable[[], None]] = None) -> int:
    """:func:`scan_pickles` of the one pickle in ``data`` (``data.pkl``)."""
    return scan_pickles(io.BytesIO(data), 1, allowed, limits, between)

