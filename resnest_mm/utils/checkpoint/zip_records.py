"""``inspect_container``: what a checkpoint file is, checked before any record is read.

torch's zip reader trusts the container: it inflates a compressed record to whatever size the
directory claims (a 2 MB record became 2 GB), and it does not check the CRC-32 that the zip
stores for every record (``MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS``), so a copy with flipped
bytes loads with other numbers. Here, from the zip directory alone:

* the number of records, their total uncompressed size and each compressed record's inflation
  ratio are bounded (torch writes records uncompressed);
* TorchScript archives (which ``torch.load`` would hand to ``torch.jit.load``) are refused;
* then every record is read once, in chunks, and its CRC-32 compared with the directory's.

Files in torch's legacy format (before torch 1.6: consecutive pickles, then raw storages) have
no records and no CRC; their pickles are scanned like ``data.pkl`` (:mod:`.pickle_scan`).
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from .errors import CheckpointLoadInterruptedError, RefusedError
from .limits import CheckpointLimits
from .memory_file import Buffer, MemoryFile

_EOCD = b'PK\x05\x06'
_EOCD64_LOCATOR = b'PK\x06\x07'
_EOCD64 = b'PK\x06\x06'
# the first pickle of a legacy file: PROTO 2, then LONG1 of 10 bytes (torch's magic number)
LEGACY_MAGIC = b'\x80\x02\x8a\x0a'
_CHUNK = 16 << 20


class DamagedError(Exception):
    """The file is truncated or not a PyTorch file (``str`` says what was found)."""


class CrcMismatchError(Exception):
    """A record whose bytes differ from the CRC-32 recorded when it was written (``str``: the
    record's name)."""


@dataclass
class Container:
    """What :func:`inspect_container` found.

    Attributes:
        legacy: True for torch's legacy format (no zip).
        pickle: ``data.pkl``'s bytes (zip), or None (legacy: the pickles are in the file).
        storage_bytes: Each tensor record's size, by storage key (``'0'``, ``'1'``, ...).
        size: The file's size.
    """

    legacy: bool
    size: int
    pickle: Optional[bytes] = None
    storage_bytes: Dict[str, int] = field(default_factory=dict)


def _entry_count(data: Buffer) -> int:
    """The number of records the end-of-central-directory record announces (zip64 too),
    read before ``zipfile`` builds an object for each."""
    start = max(0, len(data) - 22 - 65535)  # the record ends the file, after a comment
    tail = bytes(memoryview(data)[start:])
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        raise DamagedError('no zip directory at its end: truncated, or not a zip file')
    count = struct.unpack('<H', tail[at + 10:at + 12])[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == _EOCD64_LOCATOR:
        offset = struct.unpack('<Q', tail[at - 12:at - 4])[0]
        record = bytes(memoryview(data)[offset:offset + 56])
        if len(record) < 56 or record[:4] != _EOCD64:
            raise DamagedError('its zip64 directory record is missing')
        count = struct.unpack('<Q', record[32:40])[0]
    return count


def inspect_container(data: Buffer, limits: CheckpointLimits,
                      between_chunks: Optional[Callable[[], None]] = None) -> Container:
    """Check the container of a checkpoint held in memory and return what it holds.

    Args:
        data: The whole file.
        limits: The bounds.
        between_chunks: Called between the chunks of the CRC check. Defaults to None.

    Raises:
        DamagedError: truncated, not a zip, or a zip record torch cannot read.
        RefusedError: too many records, a record inflating beyond the bounds, a TorchScript
            archive, a pickle over its size limit.
        CrcMismatchError: a record's bytes differ from its CRC-32.
    """
    head = bytes(memoryview(data)[:4])
    if head != b'PK\x03\x04':
        if head == LEGACY_MAGIC:
            return Container(legacy=True, size=len(data))
        raise DamagedError('it is neither a zip nor a legacy PyTorch file')
    count = _entry_count(data)
    if count > limits.records:
        raise RefusedError(f'it has {count:,} zip records, more than the {limits.records:,} a '
                      'checkpoint may have', unsafe_helps=False)
    try:
        archive = zipfile.ZipFile(MemoryFile(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DamagedError(f'its zip directory is damaged: {exc}') from None
    with archive:
        infos = archive.infolist()
        total = 0
        pickle_info = None
        container = Container(legacy=False, size=len(data))
        for info in infos:
            name = info.filename
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                                   zipfile.ZIP_DEFLATED):
                raise DamagedError(f'its record {name} is encrypted or compressed in a way torch '
                              'cannot read')
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise DamagedError(f'its record {name} is stored with two different sizes')
            ratio = info.file_size / max(info.compress_size, 1)
            if info.compress_type == zipfile.ZIP_DEFLATED and ratio > limits.inflation_ratio:
                raise RefusedError(f'its zip record {name} would inflate from '
                              f'{info.compress_size:,} to {info.file_size:,} bytes '
                              f'({ratio:,.0f}:1, more than {limits.inflation_ratio}:1)',
                              unsafe_helps=False)
            total += info.file_size
            parts = name.split('/')
            if parts[-1] == 'constants.pkl' or 'code' in parts[1:-1]:
                raise RefusedError('it is a TorchScript archive (code), not a checkpoint of data',
                              code=True, unsafe_helps=False)
            if len(parts) == 2 and parts[1] == 'data.pkl':
                pickle_info = info
            elif len(parts) == 3 and parts[1] == 'data':
                container.storage_bytes[parts[2]] = info.file_size
        if total > limits.file_bytes:
            raise RefusedError(f'its zip records would inflate to {total:,} bytes, more than the '
                          f'{limits.file_bytes:,} a checkpoint may have', unsafe_helps=False)
        if pickle_info is None:
            raise DamagedError('it has no data.pkl record')
        if pickle_info.file_size > limits.pickle_bytes:
            raise RefusedError(f'its pickle is {pickle_info.file_size:,} bytes, more than the '
                          f'{limits.pickle_bytes:,} a checkpoint needs', unsafe_helps=False)
        for info in infos:
            if info.compress_type == zipfile.ZIP_STORED:
                _check_stored_crc(data, info, between_chunks)
            else:
                _check_crc(archive, info, between_chunks)
        container.pickle = archive.read(pickle_info)
    return container


def _check_stored_crc(data: Buffer, info: zipfile.ZipInfo,
                      between_chunks: Optional[Callable[[], None]]) -> None:
    """The CRC-32 of an uncompressed record, computed on the buffer itself (no copy)."""
    view = memoryview(data)
    header = bytes(view[info.header_offset:info.header_offset + 30])
    if len(header) < 30 or header[:4] != b'PK\x03\x04':
        raise DamagedError(f'its record {info.filename} has no local header')
    name_length, extra_length = struct.unpack('<HH', header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    end = start + info.compress_size
    if end > len(view):
        raise DamagedError(f'its record {info.filename} ends after the end of the file')
    crc = 0
    for chunk_start in range(start, end, _CHUNK):
        crc = zlib.crc32(view[chunk_start:min(end, chunk_start + _CHUNK)], crc)
        if between_chunks is not None:
            between_chunks()
    if crc != info.CRC:
        raise CrcMismatchError(info.filename)


def _check_crc(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
               between_chunks: Optional[Callable[[], None]]) -> None:
    """Read one record in chunks; ``zipfile`` compares the CRC-32 at its end (and never
    inflates past the size the directory gives)."""
    try:
        with archive.open(info) as record:
            while record.read(_CHUNK):
                if between_chunks is not None:
                    between_chunks()
    except zipfile.BadZipFile as exc:
        if 'CRC' in str(exc):
            raise CrcMismatchError(info.filename) from None
        raise DamagedError(f'its record {info.filename} is damaged: {exc}') from None
    except CheckpointLoadInterruptedError:
        raise
    except Exception as exc:  # OSError, EOFError, zlib.error of a damaged deflate stream
        raise DamagedError(f'its record {info.filename} is damaged: {exc}') from None
