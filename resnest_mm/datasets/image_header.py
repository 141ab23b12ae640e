"""What an image file declares about itself, read from its header before any decoder sees it.

A header may lie: a 674-byte JPEG can declare 40000 x 40000 pixels, and OpenCV allocates what
the header says before it reads any pixel (a 30000 x 30000 claim costs 2.7 GB and 15 s, a PNG
chunk whose length field claims 2 GB makes OpenCV allocate 2 GB). OpenCV's own limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``, 2^30 pixels) is read once when the library loads and is ten
times Pillow's; Pillow checks only the sizes it parses itself. Neither exposes a header reader
that OpenCV's decoders are guaranteed to agree with, so this module reads the headers of the
formats handed to OpenCV by hand, mirroring how each library reads them:

* JPEG: the first start-of-frame marker, walking the markers as libjpeg does (fill bytes,
  length-less RST/TEM markers); EXIF orientation from APP1.
* PNG: IHDR, and every chunk's length checked against the bytes that are really there.
* BMP (core and Windows headers, negative heights), PNM (P1-P6, comments), classic TIFF (first
  IFD: image and tile size, samples) and WebP (VP8, VP8L, VP8X).

Anything else (or a header these readers cannot vouch for) returns None: the caller must not
hand it to OpenCV, only to Pillow, whose own parsed size is then checked before loading.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

# Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS): 1024 * 1024 * 1024 // 4 // 3.
DEFAULT_MAX_PIXELS = 89_478_485

_JPEG_START = b'\xff\xd8'
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_NO_LENGTH_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}  # RST0-7, TEM: libjpeg skips them
_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Chunks other than image data (IDAT, APNG's fdAT) a PNG may have: libpng caches at most 1,000
# ancillary chunks (PNG_USER_CHUNK_CACHE_MAX); encoders write a handful.
MAX_PNG_CHUNKS = 1000
_PNM = re.compile(rb'P[1-6]\s')
_PNM_TOKEN = re.compile(rb'(?:\s|#[^\r\n]*[\r\n])*(\d{1,10})')


class HeaderError(ValueError):
    """The header of a format read here is broken (its message says how, without the path)."""


@dataclass(frozen=True)
class ImageHeader:
    """The size an image file declares, as its decoder will allocate it.

    Attributes:
        format: ``'JPEG'``, ``'PNG'``, ``'BMP'``, ``'PNM'``, ``'TIFF'`` or ``'WEBP'``.
        height: Stored height in pixels.
        width: Stored width in pixels.
        pixels: Pixels the decoder allocates at once: the image, or a larger TIFF tile.
        orientation: EXIF orientation (1-8) of a JPEG; 1 otherwise.
        components: Colour components a JPEG's frame declares (1 grey, 3 YCbCr, 4 CMYK);
            0 where not read.
    """

    format: str
    height: int
    width: int
    pixels: int
    orientation: int = 1
    components: int = 0


def _exif_orientation(segment: bytes) -> int:
    """Orientation (1-8) from an APP1 segment's payload, 1 when absent or unreadable."""
    if not segment.startswith(b'Exif\x00\x00') or len(segment) < 14:
        return 1
    tiff = segment[6:]
    order = {b'II': 'little', b'MM': 'big'}.get(tiff[:2])
    if order is None:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    for i in range(int.from_bytes(tiff[ifd:ifd + 2], order)):
        entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        if len(entry) < 12:
            return 1
        if int.from_bytes(entry[:2], order) == _ORIENTATION_TAG:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def _jpeg(data: bytes) -> Optional[ImageHeader]:
    """The first frame header, reached as libjpeg reaches it; None where libjpeg would have to
    skip garbage or would fail (Pillow, whose own size is checked, decides those)."""
    orientation, pos, end = 1, 2, len(data)
    while pos + 2 <= end:
        if data[pos] != 0xFF:
            return None  # libjpeg would skip "extraneous bytes" here: do not guess where it lands
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _NO_LENGTH_MARKERS:
            continue
        if marker in (0x00, 0xD8, 0xD9, 0xDA) or pos + 2 > end:
            return None  # stuffed byte, second SOI, EOI or scan data before any frame header
        length = int.from_bytes(data[pos:pos + 2], 'big')
        if length < 2:
            return None
        if marker == 0xE1:
            orientation = _exif_orientation(data[pos + 2:pos + length])
        elif marker in _SOF_MARKERS:
            if pos + 7 > end:
                return None
            height = int.from_bytes(data[pos + 3:pos + 5], 'big')
            width = int.from_bytes(data[pos + 5:pos + 7], 'big')
            components = data[pos + 7] if pos + 7 < end else 0
            return ImageHeader('JPEG', height, width, height * width, orientation, components)
        pos += length
    return None


def _png(data: bytes) -> ImageHeader:
    end = len(data)
    if end < 33 or data[12:16] != b'IHDR' or int.from_bytes(data[8:12], 'big') != 13:
        raise HeaderError('broken PNG: IHDR is not the first chunk')
    width = int.from_bytes(data[16:20], 'big')
    height = int.from_bytes(data[20:24], 'big')
    # Every chunk must fit in the file: OpenCV's reader allocates a buffer of the length a chunk
    # declares before reading it (a corrupt IDAT length costs 2 GB).
    # Chunks besides the image data are bounded too: libpng prints a warning line for each bad
    # one (a million empty tEXt chunks in 12 MB: a million lines on stderr per decode).
    pos, others = 8, 0
    while pos + 8 <= end:
        length = int.from_bytes(data[pos:pos + 4], 'big')
        kind = data[pos + 4:pos + 8]
        if kind == b'IEND':
            break
        if length > end - pos - 12:
            name = kind.decode('latin-1') if kind.isalpha() else repr(kind)
            raise HeaderError(f'broken PNG: chunk {name} declares {length:,} bytes, only '
                              f'{max(0, end - pos - 12):,} follow (truncated or corrupt)')
        others += kind not in (b'IDAT', b'fdAT')  # image data, and APNG frames' data
        pos += 12 + length
    if others > MAX_PNG_CHUNKS:
        raise HeaderError(f'broken PNG: {others:,} chunks besides its image data, more than '
                          f'{MAX_PNG_CHUNKS:,} (a real PNG has a handful)')
    return ImageHeader('PNG', height, width, height * width)


# Samples per pixel by PNG colour type: grey, RGB, palette, grey + alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
PNG_INFLATE_SLACK = 1 << 20  # bytes past twice the rows' size: encoders write none
_INFLATE_STEP = 1 << 20


def png_inflate_limit(data: bytes) -> int:
    """The most bytes a PNG's image data (IDAT) may inflate to for the size and sample layout
    its IHDR declares: twice its filtered rows (Adam7 interlacing adds a filter byte and up to a
    byte of padding per row of each pass, far less) plus ``PNG_INFLATE_SLACK``.

    Args:
        data: A PNG's bytes whose header :func:`read_header` accepted.
    """
    width = int.from_bytes(data[16:20], 'big')
    height = int.from_bytes(data[20:24], 'big')
    depth, colour = data[24], data[25]
    row = (width * _PNG_CHANNELS.get(colour, 4) * max(depth, 1) + 7) // 8
    return 2 * height * (1 + row) + PNG_INFLATE_SLACK


def png_inflates_beyond(data: bytes, limit: int) -> bool:
    """Whether a PNG's IDAT stream inflates to more than ``limit`` bytes, found by inflating at
    most ``limit`` + 1 MB of it in 1 MB steps (nothing kept).

    What ``max_pixels`` does not bound: zlib inflates up to 1032 bytes per byte, and libpng
    inflates every IDAT byte there is, past the rows the image needs ("Too much image data"), so
    a 2 MB PNG of 1 x 1 pixels costs seconds of CPU per decode for one pixel. A stream that
    zlib cannot inflate is left to the decoder to refuse.

    Args:
        data: A PNG's bytes whose header :func:`read_header` accepted (every chunk fits).
        limit: The most bytes allowed (:func:`png_inflate_limit`).
    """
    inflater, total, pos, end = zlib.decompressobj(), 0, 8, len(data)
    try:
        while pos + 8 <= end:
            length = int.from_bytes(data[pos:pos + 4], 'big')
            kind = data[pos + 4:pos + 8]
            if kind == b'IEND':
                break
            if kind == b'IDAT':
                # a step that fills its output may hold more back after the input is consumed
                pending, full = data[pos + 8:pos + 8 + length], True
                while (pending or full) and not inflater.eof:
                    out = inflater.decompress(pending, _INFLATE_STEP)
                    total += len(out)
                    if total > limit:
                        return True
                    pending, full = inflater.unconsumed_tail, len(out) == _INFLATE_STEP
            pos += 12 + length
    except zlib.error:
        return False
    return False


def _bmp(data: bytes) -> Optional[ImageHeader]:
    if len(data) < 26:
        raise HeaderError('broken BMP: header cut short')
    dib = int.from_bytes(data[14:18], 'little')
    if dib == 12:  # OS/2 core header: unsigned 16-bit sides
        width = int.from_bytes(data[18:20], 'little')
        height = int.from_bytes(data[20:22], 'little')
    elif dib >= 36 and len(data) >= 26:
        width = int.from_bytes(data[18:22], 'little', signed=True)
        height = abs(int.from_bytes(data[22:26], 'little', signed=True))  # < 0: top-down rows
    else:
        return None  # a header OpenCV does not read; Pillow decides
    if width < 0:
        raise HeaderError(f'broken BMP: negative width {width}')
    return ImageHeader('BMP', height, width, height * width)


def _pnm(data: bytes) -> ImageHeader:
    count = 2 if data[1:2] in (b'1', b'4') else 3  # bitmaps have no maximum value
    values, pos = [], 2
    for _ in range(count):
        match = _PNM_TOKEN.match(data, pos)
        if match is None:
            raise HeaderError('broken PNM header: expected width, height and maximum value')
        values.append(int(match.group(1)))
        pos = match.end()
    width, height = values[:2]
    return ImageHeader('PNM', height, width, height * width)


def _tiff(data: bytes) -> Optional[ImageHeader]:
    order = 'little' if data[:2] == b'II' else 'big'
    end = len(data)

    def u(pos: int, size: int) -> int:
        if pos + size > end:
            raise HeaderError('broken TIFF: a directory entry points past the end of the file')
        return int.from_bytes(data[pos:pos + size], order)

    ifd = u(4, 4)
    tags = {}
    for i in range(u(ifd, 2)):
        entry = ifd + 2 + 12 * i
        tag, kind, count = u(entry, 2), u(entry + 2, 2), u(entry + 4, 4)
        if tag in (256, 257, 277, 322, 323) and count >= 1 and kind in (3, 4):
            tags[tag] = u(entry + 8, 2 if kind == 3 else 4)
    if 256 not in tags or 257 not in tags:
        raise HeaderError('broken TIFF: no ImageWidth / ImageLength in the first directory')
    if tags.get(277, 1) > 4:
        return None  # more than 4 samples a pixel: not for OpenCV's 1-4 channel buffers
    width, height = tags[256], tags[257]
    # libtiff and OpenCV allocate a whole tile, whatever the image size
    tile = tags.get(322, 0) * tags.get(323, 0)
    return ImageHeader('TIFF', height, width, max(width * height, tile))


def _webp(data: bytes) -> Optional[ImageHeader]:
    if len(data) < 30:
        raise HeaderError('broken WebP: header cut short')
    chunk = data[12:16]
    if chunk == b'VP8 ' and data[23:26] == b'\x9d\x01\x2a':
        width = int.from_bytes(data[26:28], 'little') & 0x3FFF
        height = int.from_bytes(data[28:30], 'little') & 0x3FFF
    elif chunk == b'VP8L' and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], 'little')
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b'VP8X':
        width = int.from_bytes(data[24:27], 'little') + 1  # the canvas every frame is drawn on
        height = int.from_bytes(data[27:30], 'little') + 1
    else:
        return None
    return ImageHeader('WEBP', height, width, height * width)


def read_header(data: bytes) -> Optional[ImageHeader]:
    """The size a file declares, for the formats whose headers are read here.

    Args:
        data: The file's bytes (all of them: PNG chunks are checked to the end).

    Returns:
        The header, or None for any other format and for a JPEG whose markers are not laid out
        as libjpeg reads them without skipping bytes: those must not be handed to OpenCV.

    Raises:
        HeaderError: a header of one of these formats that is broken (a PNG chunk longer than
            the file, a TIFF directory past its end, a negative BMP width ...).
    """
    if data.startswith(_JPEG_START):
        return _jpeg(data)
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b'BM'):
        return _bmp(data)
    if _PNM.match(data):
        return _pnm(data)
    if data[:4] in (b'II*\x00', b'MM\x00*'):
        return _tiff(data)
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return _webp(data)
    return None


# A marker: 0xFF then a code other than 0x00 (a stuffed 0xFF in entropy-coded data), D0-D7
# (restart markers inside a scan, length-less) or 0xFF (a fill byte: the match starts at the
# last one). A fixed two-byte pattern, so the regex engine searches it at memchr speed.
_MARKER = re.compile(rb'\xff([^\x00\xd0-\xd7\xff])')
# Sequential (not progressive) frames: Huffman baseline / extended, arithmetic extended.
_SEQUENTIAL = frozenset({0xC0, 0xC1, 0xC9})


def count_jpeg_scans(data: bytes) -> int:
    """The number of scans (SOS markers) a JPEG holds before its end marker, as libjpeg reads
    them: markers walked by their lengths, each scan's entropy-coded data skipped to the next
    marker (so a 0xFFDA inside an EXIF thumbnail or a table is not counted).

    A progressive JPEG's decode costs one pass over every block per scan: real photos have
    at most about 10 scans (libjpeg's progression has 10, mozjpeg's optimised ones about as
    many), a crafted 2 MB file 20,000 over 8000 x 8000 pixels (minutes of decoding). This is
    libjpeg-turbo's ``TJPARAM_SCANLIMIT`` / ``djpeg -maxscans`` idea, read before any decoder
    runs; OpenCV and Pillow expose no such limit.

    A sequential frame whose first scan holds every component (an ordinary baseline JPEG) is
    complete after that scan, and libjpeg decodes no later one (1,000 copies of it appended to
    a 2000 x 2000 JPEG add no decode time): 1 is returned without reading the entropy-coded
    data, so the count costs microseconds for most files (0.2 ms per 100 KB otherwise).

    Args:
        data: The file's bytes (a JPEG: starting with 0xFFD8).

    Returns:
        The scans counted; those before a truncation or a broken marker included.
    """
    pos, end, scans = 2, len(data), 0
    frame, components = None, 0
    while pos < end:
        match = _MARKER.search(data, pos)  # the next marker, past any scan's entropy data
        if match is None:
            break
        marker, pos = match.group(1)[0], match.end()
        if marker == 0xD9:  # EOI: libjpeg stops reading here
            break
        if marker in (0x01, 0xD8):  # length-less
            continue
        length = int.from_bytes(data[pos:pos + 2], 'big')
        if length < 2:
            break
        if marker in _SOF_MARKERS and frame is None and pos + 8 <= end:
            frame, components = marker, data[pos + 7]
        if marker == 0xDA:
            scans += 1
            if scans == 1 and frame in _SEQUENTIAL and pos + 2 < end \
                    and data[pos + 2] == components:
                return 1
        pos += length
    return scans


def displayed_size(header: ImageHeader) -> Tuple[int, int]:
    """``(height, width)`` as displayed: EXIF orientations 5-8 swap the sides."""
    if header.orientation in (5, 6, 7, 8):
        return header.width, header.height
    return header.height, header.width
