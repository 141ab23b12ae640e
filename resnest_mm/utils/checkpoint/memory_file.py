"""``MemoryFile``: a read-only, seekable file over bytes already in memory, without a copy.

``io.BytesIO`` copies any buffer but ``bytes``; a checkpoint is read once into a ``bytearray``
(digest and CRC-32 computed from it), and ``torch.load`` and ``zipfile`` then read from that
same buffer (torch reads tensor records with ``readinto`` straight into their storage).
"""
from __future__ import annotations

import io
from typing import Union

Buffer = Union[bytes, bytearray, memoryview]


class MemoryFile(io.RawIOBase):
    """A binary file reading from ``buffer`` (which must not change while it is open)."""

    def __init__(self, buffer: Buffer) -> None:
        super().__init__()
        self._buffer = buffer if isinstance(buffer, (bytes, bytearray)) else bytes(buffer)
        self._view = memoryview(self._buffer).cast('B')
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            raise ValueError(f'negative seek position {base + offset}')
        self._pos = base + offset
        return self._pos

    def readinto(self, target) -> int:
        with memoryview(target).cast('B') as out:
            chunk = self._view[self._pos:self._pos + len(out)]
            out[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._view[self._pos:end])
        self._pos += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view),
                                                                    self._pos + size)
        found = self._buffer.find(b'\n', self._pos, end)  # no copy of the rest
        stop = found + 1 if found >= 0 else end
        line = bytes(self._view[self._pos:stop])
        self._pos = stop
        return line

    def close(self) -> None:
        if not self.closed:
            self._view.release()
        super().close()
