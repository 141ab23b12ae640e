"""Decode any image file ImageNet contains into BGR uint8, or say why it cannot be read.

ImageNet's training set holds CMYK JPEGs, grayscale JPEGs and a PNG named ``.JPEG``; photos carry
EXIF orientations; other folders bring RGBA and 16-bit PNGs. OpenCV decodes all of these
correctly (CMYK, 16-bit to 8-bit, EXIF rotation) and fast; Pillow is the fallback for what
OpenCV refuses. A JPEG without its end marker is truncated: OpenCV would return a partly grey
image, so it goes to Pillow, which refuses it.

Why OpenCV first: it decodes JPEG with libjpeg-turbo, like simplejpeg and PyTurboJPEG, and on the
benchmark photos (``benchmarks/data_pipeline.py --decoders``) it is as fast as simplejpeg 1.9 and
1.7x faster than Pillow; unlike simplejpeg it applies EXIF orientation and converts CMYK, and
unlike PyTurboJPEG it needs no system library. It also decodes at 1/2, 1/4 or 1/8 size in the
DCT (``reduce``), which the cropping loaders use when the crop is large enough.
"""
from __future__ import annotations

import io
from typing import Optional, Tuple

import cv2
import numpy as np

_JPEG_START = b'\xff\xd8'
_JPEG_END = b'\xff\xd9'
_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                  4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_ORIENTATION_TAG = 0x0112


class UnreadableImageError(ValueError):
    """The bytes are not an image any decoder here can read (empty, truncated, not an image)."""


def _complete_jpeg(data: bytes) -> bool:
    return data.rstrip(b'\x00\r\n ').endswith(_JPEG_END)


def _decode_pillow(data: bytes) -> np.ndarray:
    from PIL import Image, ImageOps
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # raises on truncated data
        image = ImageOps.exif_transpose(image)
        if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
            array = np.asarray(image, dtype=np.uint32)
            shift = 8 if array.max() <= 0xFFFF else 24
            image = Image.fromarray((array >> shift).astype(np.uint8), mode='L')
        rgb = np.asarray(image.convert('RGB'))
    return np.ascontiguousarray(rgb[..., ::-1])


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


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


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of a complete JPEG as displayed (EXIF orientation applied).

    Read from the markers before the image data (microseconds; Pillow's ``open`` costs ~0.1 ms,
    a tenth of the decode), so a loader can choose its crop, and with it the DCT reduction,
    before decoding. None for anything that is not a complete JPEG with a readable frame header;
    the caller then decodes in full and measures.
    """
    if not data.startswith(_JPEG_START) or not _complete_jpeg(data):
        return None
    orientation, pos, end = 1, 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], 'big')
        if marker == 0xE1:
            orientation = _exif_orientation(data[pos + 4:pos + 2 + length])
        elif marker in _SOF_MARKERS:
            if pos + 9 > end:
                return None
            height = int.from_bytes(data[pos + 5:pos + 7], 'big')
            width = int.from_bytes(data[pos + 7:pos + 9], 'big')
            if not height or not width:
                return None
            return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
        elif marker == 0xDA:  # image data before any frame header: not a JPEG we understand
            return None
        pos += 2 + length
    return None


def decode_image(data: bytes, path: str = '<bytes>', reduce: int = 1) -> np.ndarray:
    """Decode ``data`` into an ``(H, W, 3)`` BGR uint8 array, EXIF orientation applied.

    Args:
        data: The file's bytes.
        path: Named in the error message.
        reduce: 1, 2, 4 or 8: decode a JPEG at ``ceil(size / reduce)`` by DCT scaling, several
            times faster than decoding in full and resizing (OpenCV reduces other formats after
            decoding, and Pillow's fallback does not reduce): callers read the scale off the
            returned shape.

    Raises:
        UnreadableImageError: with ``path`` and the reason.
    """
    if reduce not in _REDUCED_FLAGS:
        raise ValueError(f'decode_image: reduce={reduce} must be one of 1, 2, 4, 8')
    if not data:
        raise UnreadableImageError(f'{path}: empty file')
    if not data.startswith(_JPEG_START) or _complete_jpeg(data):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[reduce])
        if image is not None:
            return image
    try:
        return _decode_pillow(data)
    except Exception as exc:  # Pillow raises many types for bad data
        kind = 'truncated JPEG' if data.startswith(_JPEG_START) else 'not a readable image'
        raise UnreadableImageError(f'{path}: {kind} ({type(exc).__name__}: {exc})') from None
