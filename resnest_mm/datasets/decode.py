"""Decode any image file ImageNet contains into BGR uint8, or say why it cannot be read.

ImageNet's training set holds CMYK JPEGs, grayscale JPEGs and a PNG named ``.JPEG``; photos carry
EXIF orientations; other folders bring RGBA and 16-bit PNGs. OpenCV decodes all of these
correctly (CMYK, 16-bit to 8-bit, EXIF rotation) and fast; Pillow is the fallback for what
OpenCV refuses. A JPEG without its end marker is truncated: OpenCV would return a partly grey
image, so it goes to Pillow, which refuses it.
"""
from __future__ import annotations

import io

import cv2
import numpy as np

_JPEG_START = b'\xff\xd8'
_JPEG_END = b'\xff\xd9'


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


def decode_image(data: bytes, path: str = '<bytes>') -> np.ndarray:
    """Decode ``data`` into an ``(H, W, 3)`` BGR uint8 array, EXIF orientation applied.

    Raises:
        UnreadableImageError: with ``path`` and the reason.
    """
    if not data:
        raise UnreadableImageError(f'{path}: empty file')
    if not data.startswith(_JPEG_START) or _complete_jpeg(data):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            return image
    try:
        return _decode_pillow(data)
    except Exception as exc:  # Pillow raises many types for bad data
        kind = 'truncated JPEG' if data.startswith(_JPEG_START) else 'not a readable image'
        raise UnreadableImageError(f'{path}: {kind} ({type(exc).__name__}: {exc})') from None
