"""The one place where checkpoints are read: as data only, verified, fitting the model.

What torch and mmengine lack for this:

* **Loading is data only.** Every load in resnest_mm (``--resume``, ``load_from``,
  ``tools/test.py``, the converter, inference) is ``torch.load(weights_only=True)`` with an
  explicit allow-list (:data:`SAFE_GLOBALS`, passed through torch's public
  ``torch.serialization.safe_globals`` for that one load, nothing registered process-wide). A
  file that needs anything else is refused in one sentence naming the type, unless the caller
  asked for ``unsafe=True`` (``--unsafe-load``: a file the user trusts, since unpickling can run
  code).
* **Checkpoints we write carry a SHA-256** in ``NAME.sha256`` beside them (the format of
  ``sha256sum``, so ``sha256sum -c`` checks it too), computed from the bytes while they are
  written. Every load verifies it when it is there and refuses a mismatch (path, expected,
  found); a truncated or damaged file gets the same sentence from every tool.
* **No HistoryBuffer pickles.** mmengine's ``HistoryBuffer.__getstate__`` pickles its class's
  statistics methods (``builtins.getattr`` calls), which weights-only loading must refuse. Our
  checkpoints store the message hub's buffers as plain lists (:func:`plain_message_hub`) and
  turn them back into buffers on load (:func:`restore_message_hub`).

Writing is :func:`resnest_mm.utils.fileio.atomic_write_bytes` (atomic, digest, disk full).
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .. import compat
from .errors import ExplainedError, ExplainedFileNotFoundError, ExplainedValueError
from .fileio import DIGEST_SUFFIX

_CHUNK = 16 << 20
_PLAIN_BUFFER_KEY = '__history_buffer__'


def _numpy_safe_globals() -> List[Any]:
    """numpy's array and scalar reconstruction, as numpy values in checkpoints need them."""
    multiarray = compat.numpy_multiarray()
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.float64, np.float32, np.float16, np.int64, np.int32, np.uint32,
                      np.uint8, np.bool_)]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
            *dtype_classes]


# Types our checkpoints may hold besides tensors and Python builtins: numpy values (a config or
# a dataset's metainfo can carry them) and, for checkpoints written before this module existed,
# HistoryBuffer pickled as plain data (its __setstate__ only stores data).
SAFE_GLOBALS: List[Any] = [*_numpy_safe_globals(), HistoryBuffer]


class CheckpointError(ExplainedError, ValueError):
    """A checkpoint that must not be used: damaged, truncated, not a checkpoint, or code."""


def digest_path(path: str) -> str:
    """Where the SHA-256 of the checkpoint at ``path`` is kept."""
    return path + DIGEST_SUFFIX


def read_digest(path: str) -> Optional[str]:
    """The recorded SHA-256 of ``path`` (hex), or None when it has no digest file."""
    try:
        with open(digest_path(path), encoding='utf-8') as f:
            text = f.read(1024)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, binary
        raise CheckpointError(f'{digest_path(path)} cannot be read as a digest ({exc}); delete '
                              f'it if {path} is trusted, or use another checkpoint') from None
    match = re.match(r'\s*([0-9a-fA-F]{64})\b', text)
    if match is None:
        raise CheckpointError(f'{digest_path(path)} is not a SHA-256 digest file; delete it if '
                              f'{path} is trusted, or use another checkpoint')
    return match.group(1).lower()


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    sha = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            sha.update(chunk)
    return sha.hexdigest()


def verify(path: str) -> bool:
    """Check ``path`` against its digest file: True when verified, False when it has none.

    Raises:
        CheckpointError: the bytes differ from the recorded digest.
    """
    expected = read_digest(path)
    if expected is None:
        return False
    found = file_sha256(path)
    if found != expected:
        raise CheckpointError(
            f'{path} is damaged: its SHA-256 is {found}, but {digest_path(path)} recorded '
            f'{expected} when it was written. It is not used; resume from an earlier '
            'checkpoint (tools/train.py CONFIG --resume picks the newest one that verifies) '
            'or restore the file from a copy.')
    return True


def _first_line(exc: BaseException) -> str:
    """The first line of an error message, without the terminal colour codes torch puts in."""
    lines = re.sub(r'\x1b\[[0-9;]*m', '', str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _refused_global(exc: BaseException, path: str) -> Optional[str]:
    """The global torch's weights-only unpickler refused: from its message (torch 2.6-2.14 word
    it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL x.y whose module ..."), else read
    from the pickle itself (a protocol-4 pickle gets only "Unsupported operand 149")."""
    text = re.sub(r'\x1b\[[0-9;]*m', '', str(exc))
    match = re.search(r'[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)', text)
    if match:
        return match.group(1)
    try:
        unsafe = compat.unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: a bare pickle
        unsafe = None
    if unsafe is None:  # a bare pickle, or a torch that cannot list them (< 2.5)
        unsafe = _pickle_globals(path)
    allowed = {f'{g.__module__}.{g.__qualname__}' for g in SAFE_GLOBALS}
    unsafe = [g for g in unsafe if g not in allowed]
    return unsafe[0] if unsafe else None


def _pickle_globals(path: str, limit: int = 64 << 20) -> List[str]:
    """The globals a bare pickle file names (read statically, never executed)."""
    import pickletools
    names: List[str] = []
    strings: List[str] = []
    try:
        with open(path, 'rb') as f:
            for op, arg, _ in pickletools.genops(f.read(limit)):
                if op.name == 'GLOBAL':
                    names.append(str(arg).replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    names.append(f'{strings[-2]}.{strings[-1]}')
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # a damaged pickle: whatever was read before
        pass
    return [n for n in names if not n.startswith(('torch.', 'collections.'))]


def load_checkpoint_file(path: str, map_location: Any = 'cpu', unsafe: bool = False,
                         verified: bool = False) -> Any:
    """Read a checkpoint as data: verified when it has a digest, weights-only always.

    Args:
        path: The file.
        map_location: As ``torch.load``'s. Defaults to ``'cpu'``.
        unsafe: Unpickle anything (``--unsafe-load``): only for files the user trusts.
            Defaults to False.
        verified: The caller has just verified the digest (no second hash). Defaults to
            False.

    Returns:
        What the file holds, with the message hub's buffers restored.

    Raises:
        ExplainedFileNotFoundError: the file does not exist.
        CheckpointError: damaged (digest), truncated, not a checkpoint, or holding a type
            outside :data:`SAFE_GLOBALS`.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ExplainedFileNotFoundError(
            f'checkpoint {path} does not exist: check the path given to load_from, --resume '
            'or the checkpoint argument')
    if not verified:  # the caller has just checked the digest itself
        verify(path)
    try:
        if unsafe:
            obj = torch.load(path, map_location=map_location, weights_only=False)
        else:
            with compat.safe_globals(SAFE_GLOBALS):
                obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError / EOFError here
        refused = _refused_global(exc, path)
        if refused is not None or 'weights_only' in str(exc).lower():
            what = (f'it holds {refused}' if refused else
                    'it uses pickle instructions that are not plain data')
            hint = (' (mmengine\'s own checkpoints pickle HistoryBuffer methods this way)'
                    if refused and 'getattr' in refused else '')
            raise CheckpointError(
                f'{path} is refused: {what}{hint}, which is not plain data, and unpickling it '
                'could run code. Checkpoints are loaded as data only. If you trust the file, '
                'pass --unsafe-load (tools/train.py, test.py, infer.py, the converter) to '
                'read it once; a ResNeSt checkpoint of the original package, timm or '
                'mmpretrain can also be converted with '
                'tools/model_converters/resnest_to_mm.py.') from None
        located = re.search(r"restore data location|deserialize object on (?:a )?(\w+) device|"
                            r"tagged with (\w+)", str(exc))
        if located:
            raise CheckpointError(
                f'{path} holds tensors saved on a device this process cannot map them to '
                f'({_first_line(exc)}). Load it with map_location="cpu" (tools/test.py and '
                'load_from already do), or on a machine with that device.') from None
        raise CheckpointError(
            f'{path} cannot be read as a checkpoint: it is truncated, damaged or not a '
            f'PyTorch file ({_first_line(exc)}). It is not used; take another checkpoint '
            '(tools/train.py CONFIG --resume picks the newest one that verifies).') from None
    if isinstance(obj, dict) and isinstance(obj.get('message_hub'), dict):
        restore_message_hub(obj['message_hub'])
    return obj


def plain_message_hub(state: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of ``MessageHub.state_dict()`` whose HistoryBuffers are plain lists and whose
    numpy scalars (the logger's ``eta``) are Python numbers: plain data that
    ``torch.load(weights_only=True)`` reads without any allow-list."""
    runtime_info = {k: v.item() if isinstance(v, np.generic) else v
                    for k, v in state.get('runtime_info', {}).items()}
    scalars = {}
    for key, buffer in state.get('log_scalars', {}).items():
        if isinstance(buffer, HistoryBuffer):
            log, count = buffer.data
            buffer = {_PLAIN_BUFFER_KEY: 1, 'max_length': int(buffer.max_length),
                      'log_history': np.asarray(log).tolist(),
                      'count_history': np.asarray(count).tolist()}
        scalars[key] = buffer
    return dict(state, log_scalars=scalars, runtime_info=runtime_info)


def restore_message_hub(state: Dict[str, Any]) -> None:
    """Undo :func:`plain_message_hub` in place (buffers become HistoryBuffers again)."""
    scalars = state.get('log_scalars')
    if not isinstance(scalars, dict):
        return
    for key, value in list(scalars.items()):
        if isinstance(value, dict) and value.get(_PLAIN_BUFFER_KEY) == 1:
            scalars[key] = HistoryBuffer(value['log_history'], value['count_history'],
                                         value['max_length'])


def check_fits(own: Dict[str, Any], state_dict: Dict[str, Any], source: str,
               allowed_missing: tuple = ()) -> None:
    """Refuse weights whose keys or shapes do not fit a model, naming the first of each kind.

    A partial load (mmengine's default: warn and go on) would evaluate or train a network that
    is partly random. ``num_batches_tracked`` buffers may be missing (older checkpoints), and
    keys under ``allowed_missing`` prefixes (a classifier that fine-tuning re-initialises).

    Args:
        own: The model's ``state_dict()``.
        state_dict: The weights to load (already converted and prefix-stripped).
        source: The file, for the message.
        allowed_missing: Key prefixes the checkpoint may lack.

    Raises:
        ExplainedValueError: missing, unexpected or mis-shaped keys.
    """
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')
               and not k.startswith(tuple(allowed_missing))]
    unexpected = [k for k in state_dict if k not in own]
    resized = [f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}' for k, v in state_dict.items()
               if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape)]
    if not (missing or unexpected or resized):
        return
    problems = [f'{len(keys)} {name} ({", ".join(keys[:3])}{", ..." if len(keys) > 3 else ""})'
                for name, keys in (('missing', missing), ('unexpected', unexpected),
                                   ('of another shape (checkpoint vs model)', resized))
                if keys]
    raise ExplainedValueError(
        f'{source} does not fit the model of this config: keys {"; ".join(problems)}. Nothing '
        'was loaded. Use the config it was trained with (its depth, class count and layout), '
        'or convert it with tools/model_converters/resnest_to_mm.py.')
