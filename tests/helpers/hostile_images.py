"""Small real files whose headers lie: decompression bombs and broken headers of every format.

Each is built from a real tiny image with the header fields rewritten, so the rest of the file is
what an encoder writes.
"""
import io
import os
import struct
import zlib
from typing import Dict

import numpy as np
from PIL import Image


def _encoded(fmt: str, size=(8, 8), **kwargs) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, size + (3, ), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def jpeg_declaring(height: int, width: int) -> bytes:
    """A 16x16 JPEG (about 700 bytes) whose frame header claims ``height x width``."""
    data = bytearray(_encoded('JPEG', (16, 16), quality=90))
    sof = data.find(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_declaring(width: int, height: int, idat_length=None) -> bytes:
    """An 8-bit RGB PNG declaring ``width x height`` with 8x8 pixels of data; ``idat_length``
    overwrites the IDAT chunk's length field (a corrupt length)."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    idat = _chunk(b'IDAT', zlib.compress(b'\x00' * 25 * 8))
    if idat_length is not None:
        idat = struct.pack('>I', idat_length) + idat[4:]
    return b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + idat + _chunk(b'IEND', b'')


def png_inflating(width: int, height: int, extra: int) -> bytes:
    """A valid 8-bit RGB PNG of ``width x height`` whose IDAT data goes on for ``extra`` zero
    bytes after the image's rows (about a thousandth of that in the file): libpng inflates it
    all ("Too much image data"), 2.7 s of CPU per MB of file here, for the same image."""
    stream = zlib.compressobj(9)
    rows = (b'\x00' + b'\x80' * 3 * width) * height
    parts = [stream.compress(rows)]
    block = b'\x00' * (1 << 20)
    for start in range(0, extra, len(block)):
        parts.append(stream.compress(block[:extra - start]))
    parts.append(stream.flush())
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IDAT', b''.join(parts))
            + _chunk(b'IEND', b''))


def bmp_declaring(width: int, height: int) -> bytes:
    """An 8x8 24-bit BMP whose info header claims ``width x height`` (signed, as stored)."""
    data = bytearray(_encoded('BMP'))
    data[18:26] = struct.pack('<ii', width, height)
    return bytes(data)


def pnm_declaring(width: int, height: int) -> bytes:
    """A binary PPM (P6) with a comment, claiming ``width x height``, 8x8 pixels of data."""
    return b'P6\n# hostile\n%d %d\n255\n' % (width, height) + bytes(8 * 8 * 3)


def tiff_declaring(width: int, height: int, tile: int = 0) -> bytes:
    """An uncompressed little-endian TIFF declaring ``width x height`` (and square tiles of
    side ``tile``, when given) with 8x8 pixels of data."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (277, 3, 1)]
    entries += [(322, 4, tile), (323, 4, tile), (324, 4, 8), (325, 4, 64)] if tile else \
        [(273, 4, 8), (278, 4, height), (279, 4, 64)]
    pixels = bytes(64)
    ifd = 8 + len(pixels)
    body = struct.pack('<H', len(entries)) + b''.join(
        struct.pack('<HHII', tag, kind, 1, value) for tag, kind, value in sorted(entries))
    return b'II*\x00' + struct.pack('<I', ifd) + pixels + body + b'\x00' * 4


def webp_declaring(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) whose canvas is ``width x height``, holding an 8x8 frame."""
    frame = _encoded('WEBP', quality=80)[12:]  # the VP8 chunk of a real lossy WebP
    vp8x = b'VP8X' + struct.pack('<I', 10) + bytes(4) + (width - 1).to_bytes(3, 'little') \
        + (height - 1).to_bytes(3, 'little')
    body = b'WEBP' + vp8x + frame
    return b'RIFF' + struct.pack('<I', len(body)) + body


def gif_declaring(width: int, height: int) -> bytes:
    """An 8x8 GIF whose logical screen and first frame claim ``width x height``."""
    data = bytearray(_encoded('GIF'))
    data[6:10] = struct.pack('<HH', width, height)
    frame = data.find(b'\x2c')  # the image descriptor
    data[frame + 5:frame + 9] = struct.pack('<HH', width, height)
    return bytes(data)


def hostile_images() -> Dict[str, bytes]:
    """Name -> bytes of files every loader must refuse cheaply; names ending in ``_bomb`` declare
    more than the default ``max_pixels`` (89,478,485), the others are broken or empty."""
    return {
        'jpeg_40000x40000_bomb.JPEG': jpeg_declaring(40000, 40000),
        'jpeg_30000x30000_bomb.JPEG': jpeg_declaring(30000, 30000),
        'jpeg_zero_height.JPEG': jpeg_declaring(0, 16),
        'png_20000x20000_bomb.png': png_declaring(20000, 20000),
        'png_named_jpeg_bomb.JPEG': png_declaring(20000, 20000),
        'png_corrupt_idat_length.png': png_declaring(8, 8, idat_length=0x7FFF0000),
        'bmp_30000x30000_bomb.bmp': bmp_declaring(30000, -30000),
        'bmp_negative_width.bmp': bmp_declaring(-8, 8),
        'ppm_30000x30000_bomb.ppm': pnm_declaring(30000, 30000),
        'tiff_30000x30000_bomb.tif': tiff_declaring(30000, 30000),
        'tiff_huge_tile_bomb.tif': tiff_declaring(8, 8, tile=16384),
        'webp_16384x16384_bomb.JPEG': webp_declaring(16384, 16384),
        'gif_65535x65535_bomb.JPEG': gif_declaring(65535, 65535),
    }


def write_hostile_images(folder: str) -> Dict[str, bytes]:
    """Write :func:`hostile_images` into ``folder``; return them."""
    os.makedirs(folder, exist_ok=True)
    files = hostile_images()
    for name, data in files.items():
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)
    return files


def progressive_jpeg(height: int, width: int, scans: int) -> bytes:
    """A real progressive JPEG of a flat grey ``height x width`` image holding ``scans`` scans:
    Pillow's 10, then its last scan (an AC refinement of Y, a few bytes however large the
    image) repeated. libjpeg warns of the repeated progression and decodes it, one pass over
    every block per scan: the issue's 2.1 MB file of 8000 x 8000 pixels and 20,006 scans."""
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(
        buf, format='JPEG', quality=80, progressive=True)
    data = buf.getvalue()
    last = data.rfind(b'\xff\xda')
    assert scans >= 10 and data.count(b'\xff\xda') == 10, 'Pillow wrote another progression'
    return data[:-2] + data[last:-2] * (scans - 10) + b'\xff\xd9'
