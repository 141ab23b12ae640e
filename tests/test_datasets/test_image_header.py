"""read_header: the size a file declares, as its decoder will allocate it, for every format that
reaches OpenCV; broken headers refused with the reason."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from resnest_mm.datasets.decode import decode_image
from resnest_mm.datasets.image_header import HeaderError, read_header
from tests.helpers.hostile_images import png_declaring, tiff_declaring


def _saved(mode: str, fmt: str, size=(37, 23), **kwargs) -> bytes:
    """A real ``size`` (width, height) image of ``mode`` written by Pillow as ``fmt``."""
    rng = np.random.default_rng(0)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) % 256], -1)
    image = Image.fromarray((rgb + rng.integers(0, 8, rgb.shape)).clip(0, 255).astype(np.uint8))
    if mode == 'I;16':
        image = Image.fromarray((rgb[..., 0] * 257).astype(np.uint16))
    elif mode != 'RGB':
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


REAL_FILES = {
    'jpeg': lambda: _saved('RGB', 'JPEG', quality=90),
    'jpeg progressive': lambda: _saved('RGB', 'JPEG', progressive=True),
    'jpeg cmyk': lambda: _saved('CMYK', 'JPEG'),
    'jpeg gray': lambda: _saved('L', 'JPEG'),
    'png rgb': lambda: _saved('RGB', 'PNG'),
    'png rgba': lambda: _saved('RGBA', 'PNG'),
    'png palette': lambda: _saved('P', 'PNG'),
    'png 16-bit': lambda: _saved('I;16', 'PNG'),
    'bmp 24-bit': lambda: _saved('RGB', 'BMP'),
    'bmp 8-bit palette': lambda: _saved('P', 'BMP'),
    'bmp 1-bit': lambda: _saved('1', 'BMP'),
    'ppm': lambda: _saved('RGB', 'PPM'),
    'pgm': lambda: _saved('L', 'PPM'),
    'pbm': lambda: _saved('1', 'PPM'),
    'tiff': lambda: _saved('RGB', 'TIFF'),
    'tiff lzw': lambda: _saved('RGB', 'TIFF', compression='tiff_lzw'),
    'tiff big-endian': lambda: _big_endian_tiff(),
    'webp lossy': lambda: _saved('RGB', 'WEBP', quality=90),
    'webp lossless': lambda: _saved('RGB', 'WEBP', lossless=True),
    'webp with alpha': lambda: _saved('RGBA', 'WEBP'),
}


def _big_endian_tiff() -> bytes:
    """An uncompressed 37x23 grey TIFF in Motorola byte order, written by hand."""
    width, height = 37, 23
    pixels = bytes(range(256)) * 4
    pixels = pixels[:width * height]
    entries = [(256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 1), (278, 3, height), (279, 4, len(pixels))]
    ifd = 8 + len(pixels)

    def entry(tag, kind, value):
        packed = struct.pack('>H', value) + b'\0\0' if kind == 3 else struct.pack('>I', value)
        return struct.pack('>HHI', tag, kind, 1) + packed
    return (b'MM\x00*' + struct.pack('>I', ifd) + pixels + struct.pack('>H', len(entries))
            + b''.join(entry(*e) for e in entries) + b'\0' * 4)


@pytest.mark.parametrize('name', sorted(REAL_FILES))
def test_declared_size_is_the_real_size_and_the_file_still_decodes(name):
    data = REAL_FILES[name]()
    header = read_header(data)
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert header is not None, name
    assert (header.height, header.width) == (height, width) == (23, 37), name
    assert header.pixels == width * height
    assert decode_image(data, name).shape == (23, 37, 3)


def test_pnm_comments_and_ascii_and_jpeg_fill_bytes_are_read_as_the_decoders_read_them():
    ascii_ppm = b'P3\n# made by hand\n3 2 # width height\n255\n' + b'0 0 0 ' * 6
    assert (read_header(ascii_ppm).height, read_header(ascii_ppm).width) == (2, 3)
    assert decode_image(ascii_ppm).shape == (2, 3, 3)
    jpeg = REAL_FILES['jpeg']()
    filled = jpeg[:2] + b'\xff\xff\xff' + jpeg[2:]  # fill bytes before a marker (allowed)
    assert read_header(filled).width == 37
    assert decode_image(filled).shape == (23, 37, 3)


def test_a_tiff_tile_larger_than_the_image_counts_as_what_is_allocated():
    header = read_header(tiff_declaring(8, 8, tile=16384))
    assert (header.width, header.height, header.pixels) == (8, 8, 16384 * 16384)


@pytest.mark.parametrize('data, reason', [
    (png_declaring(8, 8, idat_length=0x7FFF0000), 'chunk IDAT declares 2,147,418,112 bytes'),
    (b'\x89PNG\r\n\x1a\n' + b'\0\0\0\x0dIHDX' + bytes(17), 'IHDR is not the first chunk'),
    (b'BM' + bytes(12) + struct.pack('<Iii', 40, -5, 5) + bytes(40), 'negative width -5'),
    (b'P6\n12\n', 'expected width, height and maximum value'),
    (b'II*\x00' + struct.pack('<I', 4000), 'points past the end of the file'),
    (b'II*\x00' + struct.pack('<IH', 8, 1) + struct.pack('<HHII', 258, 3, 1, 8) + bytes(4),
     'no ImageWidth / ImageLength'),
    (b'RIFF' + struct.pack('<I', 8) + b'WEBPVP8 ', 'header cut short'),
])
def test_broken_headers_are_refused_with_the_reason(data, reason):
    with pytest.raises(HeaderError, match=reason):
        read_header(data)


@pytest.mark.parametrize('data', [
    b'GIF89a\x08\x00\x08\x00', b'\x00\x00\x00\x0cjP  \r\n\x87\n', b'#?RADIANCE\n',
    b'\xff\xd8\xff\xe0\x00\x10JFIF\x00' + b'garbage', b'\xff\xd8' + b'\x12\x34' * 8,
    b'not an image at all'])
def test_what_is_not_read_here_is_not_vouched_for(data):
    """None: the decoder must not hand it to OpenCV (GIF, JPEG 2000, HDR, a JPEG whose
    markers libjpeg would have to resynchronise on, text)."""
    assert read_header(data) is None
