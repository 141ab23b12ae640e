"""Checkpoints as an attacker writes them: real torch zip files whose pickle holds what a
checkpoint of data never does (the cases of issue 21), built without running their payload."""
import copyreg
import io
import pickle
import zipfile
from types import SimpleNamespace

import torch


class Forged:
    """Pickled as ``func(*args)`` (a REDUCE of any global), whatever ``func`` is."""

    def __init__(self, func, *args):
        self.reduce = (func, args)


class _ForgingPickler(pickle.Pickler):
    """Pickles :class:`Forged` as its call, and the objects in ``states`` (by id) as
    ``cls.__new__(cls)`` followed by the given state (NEWOBJ + BUILD)."""

    states: dict = {}

    def reducer_override(self, obj):
        if type(obj) is Forged:
            return obj.reduce
        if id(obj) in self.states:
            return copyreg.__newobj__, (type(obj), ), self.states[id(obj)]
        return NotImplemented


def save_forged(obj, path, states=None):
    """``torch.save`` (zip format, protocol 2) with :class:`Forged` calls and forged states."""
    pickler = type('Pickler', (_ForgingPickler, ), dict(states=dict(states or {})))
    torch.save(obj, path, pickle_module=SimpleNamespace(__name__='forging', Pickler=pickler))


def torch_zip(path, data_pkl: bytes, records=None, compress=zipfile.ZIP_STORED):
    """A torch zip checkpoint whose ``data.pkl`` is ``data_pkl``; ``records`` (key -> an
    iterable of byte chunks) are added as ``archive/data/KEY``, compressed by ``compress``."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as template, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as out:
        for info in template.infolist():
            if not info.filename.endswith('/data.pkl'):
                out.writestr(info.filename, template.read(info))
        out.writestr('archive/data.pkl', data_pkl)
        for key, chunks in (records or {}).items():
            info = zipfile.ZipInfo(f'archive/data/{key}')
            info.compress_type = compress
            with out.open(info, 'w', force_zip64=True) as record:
                for chunk in chunks:
                    record.write(chunk)
    return path


def colliding_dict_pickle(count: int) -> bytes:
    """A protocol-2 pickle of a dict of ``count`` int keys that all hash to 0 (multiples of
    2**61 - 1): inserting them is quadratic (minutes for 100,000)."""
    body = bytearray(b'\x80\x02}(')
    for k in range(1, count + 1):
        key = pickle.encode_long(k * (2 ** 61 - 1))
        body += b'\x8a' + bytes([len(key)]) + key + b'K\x00'
    return bytes(body + b'u.')
