"""``load_checkpoint_file``: the one place where checkpoints are read, as data, bounded,
interruptible and integrity-checked.

Every load in resnest_mm (``--resume``, ``load_from``, ``tools/test.py``, the converter,
inference) comes here. In order, each step before the next one touches more of the file:

1. the file (and its ``.sha256``) must be a regular file within a size limit
   (:mod:`resnest_mm.utils.safe_open`): a FIFO, a device, a folder or a link to ``/dev/zero``
   is refused in one sentence, not read for ever;
2. it is read once into memory, in chunks, computing its SHA-256 when a digest is beside it;
3. the zip directory is checked before any record is read (record count, total and
   per-record inflated size), then every record's CRC-32 (:mod:`.zip_records`);
4. the pickle is walked as instructions, never executed, under a cap on their number, and
   every global it names must be a data type of :class:`~.data_types.DataRebuilder`
   (:mod:`.pickle_scan`);
5. ``torch.load`` unpickles it with the restricted pickle module
   (:mod:`.restricted_unpickler`), which rebuilds exactly those types from validated values
   and checks each tensor's storage against the file's records; then nesting depth and the
   message hub's histories are checked.

A stop signal (SIGTERM, SIGUSR1, SIGINT) during any of this ends the load at once
(:mod:`.stop_during_load`). ``unsafe=True`` (``--unsafe-load``, for a file the user trusts)
unpickles with Python's pickle instead of step 4 and 5's restrictions; steps 1 to 3 still
apply.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
from typing import Any, Callable, Dict, Optional, Set

import torch

from ..errors import ExplainedFileNotFoundError
from ..safe_open import UnsafeFileError, read_regular_bytearray
from .data_types import DataRebuilder, max_depth_exceeded
from .digest import checkpoint_file_error, damaged_digest_error, read_digest
from .errors import CheckpointError, CheckpointLoadInterruptedError, RefusedError
from .limits import CheckpointLimits
from .memory_file import MemoryFile
from .message_hub import restore_message_hub
from .pickle_scan import scan_bytes, scan_pickles
from .restricted_unpickler import restricted_pickle_module
from .stop_during_load import stop_during_load
from .zip_records import Container, CrcMismatchError, DamagedError, inspect_container

_FORCE_WEIGHTS_ONLY = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
_LEGACY_PICKLES = 5  # magic number, protocol, system info, the object, storage keys


def _first_line(exc: BaseException) -> str:
    """The first line of an error message, without the terminal colour codes torch puts in."""
    lines = re.sub(r'\x1b\[[0-9;]*m', '', str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _unreadable(path: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f'{path} cannot be read as a checkpoint: it is truncated, damaged or not a '
        f'PyTorch file ({detail}). It is not used; take another checkpoint '
        '(tools/train.py CONFIG --resume picks the newest one that verifies).')


def _refused(path: str, exc: RefusedError) -> CheckpointError:
    if exc.code and not exc.unsafe_helps:
        return CheckpointError(f'{path} is refused: {exc.reason}. Checkpoints are loaded as '
                               'data only, and this file is not one (not even with '
                               '--unsafe-load).')
    if exc.code:
        return CheckpointError(
            f'{path} is refused: {exc.reason}, which is not plain data, and unpickling it '
            'could run code. Checkpoints are loaded as data only. If you trust the file, '
            'pass --unsafe-load (tools/train.py, test.py, infer.py, the converter) to '
            'read it once; a ResNeSt checkpoint of the original package, timm or '
            'mmpretrain can also be converted with '
            'tools/model_converters/resnest_to_mm.py.')
    trusted = ' (or pass --unsafe-load if you trust it)' if exc.unsafe_helps else ''
    return CheckpointError(
        f'{path} is refused: {exc.reason}. No checkpoint needs that, and reading it could '
        f'take unbounded memory or time, so it is not used; take another checkpoint{trusted}.')


_ELEMENT_SIZES: Dict[torch.dtype, int] = {}


def _element_size(dtype: torch.dtype) -> int:
    if dtype not in _ELEMENT_SIZES:
        _ELEMENT_SIZES[dtype] = torch.empty(0, dtype=dtype).element_size()
    return _ELEMENT_SIZES[dtype]


def _storage_checker(container: Container) -> Callable[[Any], None]:
    """What a tensor's persistent id may ask: a storage of the file, no larger than its record
    (zip), or than what is left of the file (legacy format)."""
    seen: Set[Any] = set()
    total = [0]

    def check(pid: Any) -> None:
        if not (isinstance(pid, tuple) and len(pid) == (6 if container.legacy else 5)
                and pid[0] in ('storage', b'storage')):
            raise RefusedError('it names a persistent object that is not a tensor storage',
                          code=True)
        storage_type, key, location, numel = pid[1:5]
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else getattr(
            storage_type, 'dtype', None)
        if not isinstance(dtype, torch.dtype) or not isinstance(key, (str, bytes)) or \
                not isinstance(location, (str, bytes)) or len(location) > 64 or \
                type(numel) is not int or numel < 0:
            raise RefusedError('it names a tensor storage by values that are not a storage\'s')
        nbytes = numel * _element_size(dtype)
        if container.legacy:
            view = pid[5]
            if view is not None and not (isinstance(view, tuple) and len(view) == 3 and all(
                    type(v) is int and v >= 0 for v in view[1:]) and view[1] + view[2] <= numel):
                raise RefusedError('it names a view outside its tensor storage')
            if key not in seen:
                seen.add(key)
                total[0] += nbytes
                if total[0] > container.size:
                    raise RefusedError('its tensor storages are larger than the file')
            return
        record = container.storage_bytes.get(key if isinstance(key, str) else key.decode())
        if record is None or nbytes > record:
            raise RefusedError(f'it asks for {nbytes:,} bytes of tensor storage {key!s}, which its '
                          f'record data/{key!s} does not hold')

    return check


def _check_torch_environment(path: str) -> None:
    if os.environ.get(_FORCE_WEIGHTS_ONLY, '0').lower() in ('1', 'y', 'yes', 'true'):
        raise CheckpointError(
            f'{_FORCE_WEIGHTS_ONLY} is set, which makes torch refuse the reader resnest_mm '
            f'loads checkpoints with (stricter than torch\'s weights-only loading): unset it '
            f'to load {path}')


def load_checkpoint_file(path: str, map_location: Any = 'cpu', unsafe: bool = False,
                         verified: bool = False,
                         limits: Optional[CheckpointLimits] = None) -> Any:
    """Read a checkpoint as data: checked, bounded, verified, interruptible (see the module).

    Args:
        path: The file.
        map_location: As ``torch.load``'s. Defaults to ``'cpu'``.
        unsafe: Unpickle anything (``--unsafe-load``): only for files the user trusts.
            Defaults to False.
        verified: The caller has just verified the digest (no second hash). Defaults to
            False.
        limits: The bounds. Defaults to :meth:`CheckpointLimits.from_env`.

    Returns:
        What the file holds, with the message hub's buffers restored.

    Raises:
        CheckpointError: missing, not a regular file, too large, damaged (digest or CRC-32),
            truncated, not a checkpoint, holding a type outside the data types, or asking
            for more than the bounds.
        CheckpointLoadInterruptedError: a stop signal arrived during the load.
    """
    path = os.path.expanduser(path)
    limits = limits or CheckpointLimits.from_env()
    with stop_during_load(path):
        try:
            return _load(path, map_location, unsafe, verified, limits)
        except RefusedError as exc:
            raise _refused(path, exc) from None


def _load(path: str, map_location: Any, unsafe: bool, verified: bool,
          limits: CheckpointLimits) -> Any:
    _check_torch_environment(path)
    expected = None if verified else read_digest(path, limits)
    sha = hashlib.sha256() if expected else None
    try:
        data = read_regular_bytearray(path, limits.file_bytes, 'checkpoint',
                                      on_chunk=sha.update if sha is not None else None)
    except (ExplainedFileNotFoundError, UnsafeFileError) as exc:
        raise checkpoint_file_error(exc) from None
    if sha is not None and sha.hexdigest() != expected:
        raise damaged_digest_error(path, sha.hexdigest(), str(expected))
    try:
        container = inspect_container(data, limits)
    except DamagedError as exc:
        if not unsafe and data[:1] == b'\x80':  # a bare pickle: name what it would run
            with MemoryFile(data) as f, contextlib.suppress(ValueError, EOFError):
                scan_pickles(f, 1, DataRebuilder(limits, len(data)).allowed, limits)
        raise _unreadable(path, str(exc)) from None
    except CrcMismatchError as exc:
        raise CheckpointError(
            f'{path} is damaged: the CRC-32 of its record {exc} differs from the one its zip '
            'directory recorded when it was written. It is not used; resume from an earlier '
            'checkpoint (tools/train.py CONFIG --resume picks the newest one that verifies) '
            'or restore the file from a copy.') from None
    if unsafe:
        module: Any = pickle
    else:
        rebuilder = DataRebuilder(limits, container.size if container.legacy
                                  else len(container.pickle or b''))
        try:
            if container.legacy:
                with MemoryFile(data) as f:
                    scan_pickles(f, _LEGACY_PICKLES, rebuilder.allowed, limits)
            else:
                scan_bytes(container.pickle or b'', rebuilder.allowed, limits)
        except (ValueError, EOFError) as exc:  # pickletools on a damaged pickle
            raise _unreadable(path, f'its pickle is damaged: {exc}') from None
        module = restricted_pickle_module(rebuilder, _storage_checker(container))
    try:
        with MemoryFile(data) as f:
            obj = torch.load(f, map_location=map_location, pickle_module=module,
                             weights_only=False)
    except (RefusedError, CheckpointError, CheckpointLoadInterruptedError):
        raise
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError / EOFError here
        located = re.search(r"restore data location|deserialize object on (?:a )?(\w+) device|"
                            r'tagged with (\w+)', str(exc))
        if located:
            raise CheckpointError(
                f'{path} holds tensors saved on a device this process cannot map them to '
                f'({_first_line(exc)}). Load it with map_location="cpu" (tools/test.py and '
                'load_from already do), or on a machine with that device.') from None
        raise _unreadable(path, _first_line(exc)) from None
    del data
    if not unsafe and max_depth_exceeded(obj, limits.depth):
        raise RefusedError(f'its containers nest more than {limits.depth} deep')
    if isinstance(obj, dict) and isinstance(obj.get('message_hub'), dict):
        restore_message_hub(obj['message_hub'], limits)
    return obj
