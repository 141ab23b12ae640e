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

Files are hostile: before any decoder runs, the size the header declares is read
(:mod:`~resnest_mm.datasets.image_header`) and a file declaring more than ``max_pixels`` (Pillow's
decompression-bomb limit by default) is unreadable by policy, as a truncated file is, and so is
a PNG whose data inflates far beyond what its pixels need. Only files whose header was read and
checked reach OpenCV; everything else goes to Pillow, limited to the raster formats listed in
``PILLOW_FORMATS``, whose own parsed size is checked before it loads a pixel. Every decoder
failure (``cv2.error``, Pillow's many types) becomes :class:`UnreadableImageError` naming the
file.
"""
from __future__ import annotations

import io
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np

from .image_header import (
    DEFAULT_MAX_PIXELS,
    HeaderError,
    ImageHeader,
    displayed_size,
    png_inflate_limit,
    png_inflates_beyond,
    read_header,
)

_JPEG_START = b'\xff\xd8'
_JPEG_END = b'\xff\xd9'
_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                  4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# What Pillow may open (its other plugins, EPS or FITS say, are not photo formats and widen
# what a hostile file can reach).
PILLOW_FORMATS = ('JPEG', 'PNG', 'BMP', 'PPM', 'TIFF', 'WEBP', 'GIF')
# Largest file read per allowed pixel: 8 bytes is a 16-bit RGBA pixel stored uncompressed.
BYTES_PER_PIXEL_LIMIT = 8


class UnreadableImageError(ValueError):
    """The bytes are not an image any decoder here can read (empty, truncated, not an image)."""


class ImageTooLargeError(UnreadableImageError):
    """The file declares more pixels than the loader's ``max_pixels`` (unreadable by policy)."""


def _complete_jpeg(data: bytes) -> bool:
    return data.rstrip(b'\x00\r\n ').endswith(_JPEG_END)


def check_declared_size(path: str, width: int, height: int, pixels: int,
                        max_pixels: int) -> None:
    """Raise unless ``width x height`` is a non-empty size whose decode (``pixels`` allocated at
    once: the image, or a larger TIFF tile) stays within ``max_pixels``."""
    if width <= 0 or height <= 0:
        raise UnreadableImageError(f'{path}: declares an empty image ({width} x {height} '
                                   'pixels)')
    if pixels > max_pixels:
        size = f'{width} x {height} = {pixels:,} pixels' if pixels == width * height else \
            f'{width} x {height} pixels in tiles of {pixels:,} pixels'
        raise ImageTooLargeError(
            f'{path}: declares {size}, more than max_pixels={max_pixels:,}; not decoded (a '
            'decompression bomb or a lying header). If such images are real, raise max_pixels '
            'on the loading transform')


def check_file_size(path: str, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse to read a file larger than any image within ``max_pixels`` needs.

    Raises:
        ImageTooLargeError: ``size`` is over ``BYTES_PER_PIXEL_LIMIT * max_pixels`` bytes.
    """
    if size > BYTES_PER_PIXEL_LIMIT * max_pixels:
        raise ImageTooLargeError(
            f'{path}: the file is {size:,} bytes, more than an image of max_pixels='
            f'{max_pixels:,} needs ({BYTES_PER_PIXEL_LIMIT} bytes a pixel); not read. If such '
            'images are real, raise max_pixels on the loading transform')


def _decode_pillow(data: bytes, path: str, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # checked below
        try:
            image = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
        except Image.DecompressionBombError as exc:  # over twice Pillow's own global limit
            raise ImageTooLargeError(f'{path}: declares more pixels than Pillow opens ({exc}); '
                                     'not decoded') from None
    with image:
        width, height = image.size  # parsed from the header: nothing decoded yet
        check_declared_size(path, width, height, width * height, max_pixels)
        image.load()  # raises on truncated data
        image = ImageOps.exif_transpose(image)
        if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
            array = np.asarray(image, dtype=np.uint32)
            shift = 8 if array.max() <= 0xFFFF else 24
            image = Image.fromarray((array >> shift).astype(np.uint8), mode='L')
        rgb = np.asarray(image.convert('RGB'))
    return np.ascontiguousarray(rgb[..., ::-1])


def jpeg_header(data: bytes) -> Optional[ImageHeader]:
    """The header of a complete JPEG with a readable, non-empty frame header, else None.

    Read from the markers before the image data (microseconds; Pillow's ``open`` costs ~0.1 ms,
    a tenth of the decode), so a loader can choose its crop, and with it the DCT reduction and
    the region to decode, before decoding. For anything else the caller decodes in full and
    measures (``decode_image`` checks the size either way).
    """
    if not data.startswith(_JPEG_START) or not _complete_jpeg(data):
        return None
    try:
        header = read_header(data)
    except HeaderError:
        return None
    if header is None or not header.height or not header.width:
        return None
    return header


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of a complete JPEG as displayed (EXIF orientation applied), or None:
    see :func:`jpeg_header`."""
    header = jpeg_header(data)
    return None if header is None else displayed_size(header)


def decode_image(data: bytes, path: str = '<bytes>', reduce: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``data`` into an ``(H, W, 3)`` BGR uint8 array, EXIF orientation applied.

    Args:
        data: The file's bytes.
        path: Named in the error message.
        reduce: 1, 2, 4 or 8: decode a JPEG at ``ceil(size / reduce)`` by DCT scaling, several
            times faster than decoding in full and resizing (OpenCV reduces other formats after
            decoding, and Pillow's fallback does not reduce): callers read the scale off the
            returned shape.
        max_pixels: Largest image (width x height, as declared) decoded; larger files are
            unreadable by policy. Defaults to Pillow's ``MAX_IMAGE_PIXELS`` (89,478,485).

    Raises:
        UnreadableImageError: with ``path`` and the reason (``ImageTooLargeError`` when the
            file declares more than ``max_pixels``).
    """
    if reduce not in _REDUCED_FLAGS:
        raise ValueError(f'decode_image: reduce={reduce} must be one of 1, 2, 4, 8')
    if not data:
        raise UnreadableImageError(f'{path}: empty file')
    try:
        header = read_header(data)
    except HeaderError as exc:
        raise UnreadableImageError(f'{path}: {exc}') from None
    opencv_error = ''
    if header is not None:
        check_declared_size(path, header.width, header.height, header.pixels, max_pixels)
        if header.format == 'PNG':  # bounded in work too, not only in pixels (Pillow's as well)
            limit = png_inflate_limit(data)
            if png_inflates_beyond(data, limit):
                raise UnreadableImageError(
                    f'{path}: PNG data inflates to more than the {limit:,} bytes its '
                    f'{header.width} x {header.height} pixels can need (a decompression bomb); '
                    'not decoded')
        # A JPEG without its end marker is truncated: OpenCV would return it part grey.
        if header.format != 'JPEG' or _complete_jpeg(data):
            try:
                image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[reduce])
            except cv2.error as exc:  # e.g. an assertion in a decoder: try Pillow
                image, opencv_error = None, f'; OpenCV: {str(exc).strip().splitlines()[-1]}'
            if image is not None:
                return image
    try:
        return _decode_pillow(data, path, max_pixels)
    except UnreadableImageError:
        raise
    except Exception as exc:  # Pillow raises many types for bad data
        kind = 'truncated JPEG' if data.startswith(_JPEG_START) else 'not a readable image'
        raise UnreadableImageError(f'{path}: {kind} ({type(exc).__name__}: {exc}'
                                   f'{opencv_error})') from None
