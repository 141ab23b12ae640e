"""``restricted_pickle_module``: the pickle module ``torch.load`` is given, so that a checkpoint
is read as data on every torch from 2.1 to 2.15.

Why not torch's own weights-only loading: ``torch.serialization.add_safe_globals`` and
``safe_globals`` arrived in torch 2.4/2.5, and what its allow-list admits is not bounded (see
:mod:`.data_types`). Every torch since 1.x instead accepts ``torch.load(f, pickle_module=M,
weights_only=False)``: its ``_load`` (zip files) and ``_legacy_load`` subclass
``M.Unpickler`` (torch's subclass only maps its legacy ``*Storage`` names and
``torch.tensor``, then calls ``super().find_class``), set ``persistent_load`` on the instance
for tensor storages and call ``load()``; ``_legacy_load`` also calls ``M.load(f)`` for its
header pickles. Checked in the sources of torch 2.1.2 and 2.14.

The unpickler is Python's own pure-Python ``pickle._Unpickler`` with a copy of its ``dispatch``
table in which the instructions that resolve, call, instantiate, fill or set the state of
objects are replaced by checked ones:

* ``find_class`` resolves only :class:`~.data_types.DataRebuilder`'s globals;
* REDUCE calls only the rebuilder's functions, NEWOBJ instantiates only ``HistoryBuffer`` (with
  no arguments), BUILD goes through :meth:`~.data_types.DataRebuilder.build`;
* SETITEM(S), DICT, ADDITEMS and FROZENSET fill only dicts and sets, with keys whose hashes
  cannot be made to collide; APPEND(S) fill only lists;
* BINPERSID (a tensor's storage) must name a record of the file of at least the size asked.
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any, Callable

from .data_types import DataRebuilder, check_key
from .errors import RefusedError
from .pickle_scan import global_name

_Base: Any = pickle._Unpickler  # the pure-Python unpickler: its dispatch table can be replaced
_DICTS = (dict, OrderedDict)


def _op(code: bytes) -> int:
    return code[0]


class RestrictedUnpickler(_Base):
    """``pickle._Unpickler`` that builds data only; bound to one load by
    :func:`restricted_pickle_module`."""

    rebuilder: DataRebuilder
    check_storage: Callable[[Any], None]
    dispatch = dict(_Base.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        full = global_name(module, name) if self.proto < 3 and self.fix_imports else \
            f'{module}.{name}'
        found = self.rebuilder.globals.get(full)
        if found is None:
            raise RefusedError(f'it holds {full}', code=True)
        return found

    def _reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in self.rebuilder.callables:
            raise RefusedError(f'it calls {getattr(func, "__name__", type(func).__name__)}',
                          code=True)
        if not isinstance(args, tuple):
            raise RefusedError('it calls a function with arguments that are not a tuple')
        try:
            self.stack[-1] = func(*args)
        except TypeError as exc:  # a wrong number of arguments
            raise RefusedError(f'it calls {func.__name__} with arguments it does not take ({exc})'
                          ) from None

    def _new(self, cls: Any, args: Any, kwargs: Any = None) -> None:
        if cls not in self.rebuilder.new_classes or args != () or kwargs:
            raise RefusedError(f'it instantiates {getattr(cls, "__qualname__", cls)!s}', code=True)
        self.append(cls.__new__(cls))

    def _newobj(self) -> None:
        args = self.stack.pop()
        self._new(self.stack.pop(), args)

    def _newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        self._new(self.stack.pop(), args, kwargs)

    def _build(self) -> None:
        state = self.stack.pop()
        self.rebuilder.build(self.stack[-1], state)

    def _fill_dict(self, target: Any, items: list) -> None:
        if type(target) not in _DICTS:
            raise RefusedError(f'it sets items of a {type(target).__name__}', code=True)
        if len(items) % 2:
            raise RefusedError('it sets a dict key without a value')
        for i in range(0, len(items), 2):
            check_key(items[i])
            target[items[i]] = items[i + 1]

    def _setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._fill_dict(self.stack[-1], [key, value])

    def _setitems(self) -> None:
        items = self.pop_mark()
        self._fill_dict(self.stack[-1], items)

    def _dict(self) -> None:
        items = self.pop_mark()
        target: dict = {}
        self._fill_dict(target, items)
        self.append(target)

    def _additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise RefusedError(f'it adds items to a {type(target).__name__}', code=True)
        for item in items:
            check_key(item)
        target.update(items)

    def _frozenset(self) -> None:
        items = self.pop_mark()
        for item in items:
            check_key(item)
        self.append(frozenset(items))

    def _append(self) -> None:
        value = self.stack.pop()
        self._extend(self.stack[-1], [value])

    def _appends(self) -> None:
        items = self.pop_mark()
        self._extend(self.stack[-1], items)

    @staticmethod
    def _extend(target: Any, items: list) -> None:
        if type(target) is not list:
            raise RefusedError(f'it appends to a {type(target).__name__}', code=True)
        target.extend(items)

    def _binpersid(self) -> None:
        pid = self.stack.pop()
        self.check_storage(pid)
        self.append(self.persistent_load(pid))

    def _refuse(self) -> None:
        raise RefusedError('it uses a pickle instruction no checkpoint of data needs', code=True)


for _code, _method in ((pickle.REDUCE, RestrictedUnpickler._reduce),
                       (pickle.NEWOBJ, RestrictedUnpickler._newobj),
                       (pickle.NEWOBJ_EX, RestrictedUnpickler._newobj_ex),
                       (pickle.BUILD, RestrictedUnpickler._build),
                       (pickle.SETITEM, RestrictedUnpickler._setitem),
                       (pickle.SETITEMS, RestrictedUnpickler._setitems),
                       (pickle.DICT, RestrictedUnpickler._dict),
                       (pickle.ADDITEMS, RestrictedUnpickler._additems),
                       (pickle.FROZENSET, RestrictedUnpickler._frozenset),
                       (pickle.APPEND, RestrictedUnpickler._append),
                       (pickle.APPENDS, RestrictedUnpickler._appends),
                       (pickle.BINPERSID, RestrictedUnpickler._binpersid),
                       (pickle.PERSID, RestrictedUnpickler._refuse),
                       (pickle.INST, RestrictedUnpickler._refuse),
                       (pickle.OBJ, RestrictedUnpickler._refuse),
                       (pickle.EXT1, RestrictedUnpickler._refuse),
                       (pickle.EXT2, RestrictedUnpickler._refuse),
                       (pickle.EXT4, RestrictedUnpickler._refuse)):
    RestrictedUnpickler.dispatch[_op(_code)] = _method
for _name in ('NEXT_BUFFER', 'READONLY_BUFFER'):  # protocol 5 (Python >= 3.8)
    if hasattr(pickle, _name):
        RestrictedUnpickler.dispatch[_op(getattr(pickle, _name))] = RestrictedUnpickler._refuse


def restricted_pickle_module(rebuilder: DataRebuilder,
                             check_storage: Callable[[Any], None]) -> SimpleNamespace:
    """A pickle module for one ``torch.load``: its ``Unpickler`` and ``load`` build data only.

    Args:
        rebuilder: What globals resolve to, and the budget of this load.
        check_storage: Called with each persistent id (a tensor's storage) before torch's
            ``persistent_load`` reads it; raises :class:`~.errors.RefusedError`.
    """
    unpickler = type('Unpickler', (RestrictedUnpickler, ),
                     dict(rebuilder=rebuilder, check_storage=staticmethod(check_storage)))

    def load(file: Any, **kwargs: Any) -> Any:
        return unpickler(file, **kwargs).load()

    return SimpleNamespace(__name__='resnest_mm_restricted_pickle', Unpickler=unpickler,
                           load=load)
