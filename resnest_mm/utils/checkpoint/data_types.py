"""``DataRebuilder``: the types a checkpoint of data holds, rebuilt from validated values only.

Besides pickle's own containers and scalars, checkpoints written by torch, mmengine and
mmpretrain hold: tensors (torch's ``_rebuild_tensor*`` functions on the storages of the zip),
``torch.Size``, ``torch.device``, dtypes, ``OrderedDict`` (with torch's ``_metadata``), numpy
arrays, scalars and dtypes (the message hub's histories and ``eta``), bytes (pickle protocol 2
writes them as ``_codecs.encode(text, 'latin1')``) and mmengine's ``HistoryBuffer``, whose
pickle names its statistics methods as ``getattr(HistoryBuffer, 'mean')``.

What torch's weights-only allow-list lets through and this does not: ``_codecs.encode`` with
any codec (punycode on 30,000 characters takes minutes), ``bytearray(3e9)``, and ``set``,
``dict`` keys or state of any size or type. Here every global resolves to a function of this
class that checks its arguments as data (types, shapes, the number of bytes it may build, from
a budget proportional to the pickle's size) before building anything, and ``HistoryBuffer``
state is given to its constructor, never to its ``__setstate__`` (which updates the class-wide
``_statistics_methods``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, Set

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .errors import RefusedError
from .limits import CheckpointLimits

# numpy dtypes of numbers and booleans (no objects, strings, records or void)
NUMPY_DTYPES = frozenset({'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4',
                          'f8', 'c8', 'c16'})
_NUMPY_KINDS = frozenset('biufc')
_MAX_DIMS = 64
_HISTORY_ATTRIBUTES = frozenset({'max_length', '_max_length', '_log_history', '_count_history',
                                 'statistics_methods', '_statistics_methods'})
# dict keys and set members whose hash an attacker cannot steer: ints below 2**61 hash to
# themselves (no two collide), str/bytes hashes are salted per process
_KEY_LIMIT = 1 << 61


class StatisticName(str):
    """What ``getattr(HistoryBuffer, NAME)`` becomes: the name, never the class's method."""


def check_key(key: Any) -> None:
    """Refuse a dict key or set member whose hash can be chosen to collide."""
    kind = type(key)
    if kind is int:
        if -_KEY_LIMIT < key < _KEY_LIMIT:
            return
        raise RefusedError('it holds a dict key or set member that is an integer beyond 2**61 '
                      '(such keys can be chosen to collide in a hash table)')
    if kind in (str, bytes, bool, float, type(None)):
        return
    raise RefusedError(f'it holds a dict key or set member of type {kind.__name__}')


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f'{value.__module__}.{value.__qualname__}'
    return type(value).__name__


def _ints(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) > _MAX_DIMS or \
            not all(type(v) is int and v >= 0 for v in value):
        raise RefusedError(f'it holds a {what} that is not a short tuple of sizes')
    return tuple(value)


class DataRebuilder:
    """The globals one load may resolve, each checking its arguments as data.

    Args:
        limits: The bounds.
        pickle_bytes: The size of the pickle(s): what they may make the reader build is
            proportional to it.
    """

    def __init__(self, limits: CheckpointLimits, pickle_bytes: int) -> None:
        self.limits = limits
        self.budget = limits.built_bytes_per_pickle_byte * pickle_bytes + (1 << 20)
        self.built = 0
        utils = torch._utils
        functions: Dict[str, Callable] = {
            'collections.OrderedDict': self.ordered_dict,
            'torch._utils._rebuild_tensor': self.rebuild_tensor,
            'torch._utils._rebuild_tensor_v2': self.rebuild_tensor_v2,
            'torch._utils._rebuild_parameter': self.rebuild_parameter,
            'torch._utils._rebuild_parameter_with_state': self.rebuild_parameter_with_state,
            'torch.Size': self.size,
            'torch.device': self.device,
            'numpy.dtype': self.numpy_dtype,
            '_codecs.encode': self.latin1,
            'builtins.bytes': self.empty_bytes,
            'builtins.set': self.make_set,
            'builtins.frozenset': self.make_frozenset,
            'builtins.complex': self.make_complex,
            'builtins.getattr': self.history_method,
        }
        if hasattr(utils, '_rebuild_tensor_v3'):  # torch >= 2.3
            functions['torch._utils._rebuild_tensor_v3'] = self.rebuild_tensor_v3
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # numpy 1 / 2
            functions[f'{module}._reconstruct'] = self.numpy_reconstruct
            functions[f'{module}.scalar'] = self.numpy_scalar
        values: Dict[str, Any] = {
            f'torch.{name}': value for name, value in vars(torch).items()
            if isinstance(value, torch.dtype)}
        values.update({
            'numpy.ndarray': np.ndarray,  # only as _reconstruct's first argument
            'torch.UntypedStorage': torch.UntypedStorage,  # in tensors' persistent ids
            'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,  # NEWOBJ, BUILD
        })
        #: every name a pickle may use, and what it resolves to
        self.globals: Dict[str, Any] = {**values, **functions}
        #: the objects REDUCE may call (by identity)
        self.callables: Set[int] = {id(f) for f in functions.values()}
        #: the classes NEWOBJ may instantiate (bare, then given their state by BUILD)
        self.new_classes = (HistoryBuffer, )

    def allowed(self, name: str) -> bool:
        """Whether a pickle may name the global ``name`` (``module.attribute``)."""
        if name in self.globals:
            return True
        # torch resolves its legacy storage classes itself (FloatStorage, ...)
        module, _, attribute = name.rpartition('.')
        return module == 'torch' and attribute.endswith('Storage') and attribute.isidentifier()

    def charge(self, nbytes: int) -> None:
        """Count ``nbytes`` built; refuse past the budget."""
        self.built += int(nbytes)
        if self.built > self.budget:
            raise RefusedError(f'it asks the reader to build more than {self.budget:,} bytes of '
                          'objects from its pickle')

    # --- pickle's and Python's own types -------------------------------------------------------

    def ordered_dict(self, *args: Any) -> OrderedDict:
        if args:  # pickle's OrderedDict takes its items through SETITEMS, checked there
            raise RefusedError('it builds an OrderedDict from arguments')
        return OrderedDict()

    def latin1(self, text: Any, encoding: Any = 'utf-8', *errors: Any) -> bytes:
        """``_codecs.encode(text, 'latin1')``: how protocol 2 writes bytes, and nothing else."""
        if not isinstance(text, str) or encoding not in ('latin1', 'latin-1') or errors:
            raise RefusedError(f'it calls _codecs.encode with the encoding {encoding!r} (bytes '
                          "are written with 'latin1' only)", code=True)
        self.charge(len(text))
        return text.encode('latin1')

    def empty_bytes(self, *args: Any) -> bytes:
        if args:
            raise RefusedError('it calls bytes() with arguments (only b"" is written that way)',
                          code=True)
        return b''

    def _members(self, items: Any) -> list:
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise RefusedError(f'it builds a set from a {type(items).__name__}', code=True)
        for item in items:
            check_key(item)
        self.charge(16 * len(items))
        return list(items)

    def make_set(self, items: Iterable = ()) -> set:
        return set(self._members(items))

    def make_frozenset(self, items: Iterable = ()) -> frozenset:
        return frozenset(self._members(items))

    def make_complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        if not all(type(v) in (int, float) and abs(v) < 2 ** 1023 for v in (real, imag)):
            raise RefusedError('it calls complex() with values that are not numbers', code=True)
        return complex(real, imag)

    # --- torch ----------------------------------------------------------------------------------

    def size(self, dims: Any = ()) -> torch.Size:
        return torch.Size(_ints(dims, 'torch.Size'))

    def device(self, spec: Any, index: Any = None) -> torch.device:
        if not isinstance(spec, str) or len(spec) > 32 or not (
                index is None or type(index) is int):
            raise RefusedError('it names a device that is not a short device string')
        return torch.device(spec) if index is None else torch.device(spec, index)

    @staticmethod
    def _check_tensor(storage: Any, offset: Any, size: Any, stride: Any,
                      requires_grad: Any = False, hooks: Any = None) -> None:
        if not isinstance(storage, torch.storage.TypedStorage):
            raise RefusedError(f'it rebuilds a tensor from a {type(storage).__name__}, not from a '
                          'storage of the file')
        if type(offset) is not int or offset < 0 or type(requires_grad) is not bool:
            raise RefusedError('it rebuilds a tensor from arguments that are not its layout')
        if len(_ints(size, 'tensor size')) != len(_ints(stride, 'tensor stride')):
            raise RefusedError('it rebuilds a tensor whose size and stride differ in length')
        if hooks:  # torch writes an empty OrderedDict; hooks would be called in backward
            raise RefusedError('it rebuilds a tensor with backward hooks', code=True)

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(k, str) and type(v) is bool for k, v in metadata.items())):
            raise RefusedError('it rebuilds a tensor with metadata that is not flags')

    def rebuild_tensor(self, storage, storage_offset, size, stride) -> torch.Tensor:
        self._check_tensor(storage, storage_offset, size, stride)
        return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))

    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, metadata=None) -> torch.Tensor:
        self._check_tensor(storage, storage_offset, size, stride, requires_grad,
                           backward_hooks)
        self._check_metadata(metadata)
        return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size),
                                               tuple(stride), requires_grad, OrderedDict(),
                                               metadata)

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, dtype, metadata=None) -> torch.Tensor:
        self._check_tensor(storage, storage_offset, size, stride, requires_grad,
                           backward_hooks)
        self._check_metadata(metadata)
        if not isinstance(dtype, torch.dtype):
            raise RefusedError('it rebuilds a tensor with a dtype that is not a torch dtype')
        return torch._utils._rebuild_tensor_v3(storage, storage_offset, tuple(size),
                                               tuple(stride), requires_grad, OrderedDict(),
                                               dtype, metadata)

    def rebuild_parameter(self, data, requires_grad, backward_hooks) -> torch.nn.Parameter:
        if not isinstance(data, torch.Tensor) or type(requires_grad) is not bool or \
                backward_hooks:
            raise RefusedError('it rebuilds a Parameter from arguments that are not a tensor',
                          code=True)
        return torch.nn.Parameter(data, requires_grad)

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks,
                                     state) -> torch.nn.Parameter:
        if state and not (isinstance(state, tuple) and not any(state)):
            raise RefusedError('it sets attributes on a Parameter', code=True)
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    # --- numpy ----------------------------------------------------------------------------------

    def numpy_dtype(self, name: Any, align: Any = False, copy: Any = True) -> np.dtype:
        if not isinstance(name, str) or name not in NUMPY_DTYPES or align:
            raise RefusedError(f'it holds a numpy dtype {name!r} that is not a number type')
        return np.dtype(name, align=False, copy=True)  # a fresh one: BUILD sets its state

    def numpy_reconstruct(self, cls: Any, shape: Any, typecode: Any) -> np.ndarray:
        if cls is not np.ndarray or shape != (0, ) or typecode not in (b'b', 'b'):
            raise RefusedError(f'it rebuilds a numpy array of type {_describe(cls)}', code=True)
        return np.empty((0, ), np.int8)  # BUILD gives it its shape, dtype and bytes

    def _check_numpy_dtype(self, dtype: Any) -> np.dtype:
        if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMPY_KINDS or \
                dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise RefusedError(f'it holds a numpy value of dtype {dtype!r}, not of numbers')
        return dtype

    def numpy_scalar(self, dtype: Any, data: Any = None) -> np.generic:
        dtype = self._check_numpy_dtype(dtype)
        if not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise RefusedError('it holds a numpy scalar whose bytes do not fit its dtype')
        return np.frombuffer(data, dtype=dtype)[0]

    # --- BUILD: the state of objects --------------------------------------------------------

    def build(self, obj: Any, state: Any) -> None:
        """Give ``obj`` (made by NEWOBJ or one of the functions above) its pickled state."""
        kind = type(obj)
        if kind is np.ndarray:
            self._build_array(obj, state)
        elif isinstance(obj, np.dtype):
            self._build_dtype(obj, state)
        elif kind is HistoryBuffer:
            self._build_history(obj, state)
        elif kind is OrderedDict and isinstance(state, dict) and all(
                isinstance(k, str) and k.isidentifier() and not k.startswith('__')
                for k in state):
            obj.__dict__.update(state)  # torch's state_dict()._metadata
        else:
            raise RefusedError(f'it sets the state of a {kind.__name__} object', code=True)

    def _build_array(self, array: np.ndarray, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise RefusedError('it holds a numpy array whose state is not shape, dtype and bytes')
        _, shape, dtype, fortran, raw = state
        shape = _ints(shape, 'numpy shape')
        dtype = self._check_numpy_dtype(dtype)
        count = 1
        for dim in shape:
            count *= dim
        if type(fortran) is not bool or not isinstance(raw, bytes) or \
                len(raw) != count * dtype.itemsize:
            raise RefusedError('it holds a numpy array whose bytes do not fit its shape')
        self.charge(len(raw))
        array.__setstate__((1, shape, dtype, fortran, raw))

    def _build_dtype(self, dtype: np.dtype, state: Any) -> None:
        # (version, byte order, subarray, names, fields, item size, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ('<', '>', '|', '=') and state[2:5] == (None, None, None)
                and state[5:8] == (-1, -1, 0) and (len(state) == 8 or state[8] is None)):
            raise RefusedError('it holds a numpy dtype with a state other than a byte order')
        dtype.__setstate__(state)

    def _numbers(self, values: Any) -> np.ndarray:
        if isinstance(values, np.ndarray):
            if values.ndim == 1 and values.dtype.kind in 'biuf':
                return values
        elif isinstance(values, (list, tuple)) and all(
                type(v) in (int, float, bool) for v in values):
            self.charge(8 * len(values))
            return np.asarray(values)
        raise RefusedError('it holds a HistoryBuffer whose history is not a list of numbers')

    def _build_history(self, buffer: HistoryBuffer, state: Any) -> None:
        """mmengine's ``HistoryBuffer`` state, validated, through its constructor: the
        statistics methods its pickle names are not restored (they are the class's, registered
        by code, never by a checkpoint)."""
        if not isinstance(state, dict) or not set(state) <= _HISTORY_ATTRIBUTES:
            raise RefusedError('it holds a HistoryBuffer with attributes other than its history')
        max_length = state.get('max_length', state.get('_max_length', 1_000_000))
        if type(max_length) is not int or not 0 < max_length <= self.limits.history_length:
            raise RefusedError(f'it holds a HistoryBuffer of max_length {max_length!r} (at most '
                          f'{self.limits.history_length:,})')
        log = self._numbers(state.get('_log_history', []))
        count = self._numbers(state.get('_count_history', []))
        if len(log) != len(count) or len(log) > max_length:
            raise RefusedError('it holds a HistoryBuffer whose histories differ in length or '
                          'exceed its max_length')
        methods = state.get('statistics_methods', state.get('_statistics_methods', {}))
        if not isinstance(methods, dict) or not all(
                isinstance(k, str) and isinstance(v, StatisticName) for k, v in methods.items()):
            raise RefusedError('it holds a HistoryBuffer whose statistics are not method names')
        self.charge(16 * len(log))
        HistoryBuffer.__init__(buffer, log, count, max_length)

    def history_method(self, owner: Any, name: Any) -> StatisticName:
        """``getattr(HistoryBuffer, 'mean')`` in mmengine's pickle: the name only."""
        if owner is HistoryBuffer and isinstance(name, str) and name.isidentifier() and \
                len(name) <= 64:
            return StatisticName(name)
        raise RefusedError(f'it calls builtins.getattr on {_describe(owner)}', code=True)


def max_depth_exceeded(obj: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep in ``obj`` (walked once per object,
    without recursion: code that copies or prints the result recurses)."""
    stack = [(obj, 0)]
    seen: Set[int] = set()
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, (dict, list, tuple, set, frozenset)) and id(item) not in seen:
            seen.add(id(item))
            children: Iterable = (
                [v for pair in item.items() for v in pair] if isinstance(item, dict) else item)
            stack.extend((child, depth + 1) for child in children)
    return False
