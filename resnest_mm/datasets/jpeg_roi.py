"""Decode only a crop's region of a JPEG (libjpeg-turbo's partial decompression), through ctypes.

What OpenCV, Pillow, simplejpeg and torchvision lack: they decode every pixel although a
random-resized crop keeps about half of them and the evaluation centre crop 57% of a 4:3 photo.
libjpeg-turbo (>= 1.5) skips the columns beside a region (``jpeg_crop_scanline``: no IDCT,
upsampling or colour conversion there), the rows above it (``jpeg_skip_scanlines``) and stops
after its last row; with DCT scaling (1/2, 1/4, 1/8) the decoder touches only what the crop
needs. The pixels are the ones OpenCV's full decode gives (same libjpeg-turbo, same IDCT and
upsampling: bit-identical on the benchmark photos), so the crops do not change.

Why our own 100 lines of C (``csrc/jpeg_roi.c``) and not PyTurboJPEG: PyTurboJPEG 2 needs
TurboJPEG 3 (``tj3Init``), which no pip wheel ships and Debian 12 does not package (it has
libjpeg-turbo 2.1.5, whose TurboJPEG API has no cropped decode); the libjpeg API of 2.1.5 has
both calls. ``make jpeg-roi`` (part of ``make venv``) builds ``resnest_mm/datasets/_jpeg_roi.so``
against the system's ``libjpeg62-turbo``; without it, the loaders decode in full as before and
say so once in the log.
"""
from __future__ import annotations

import ctypes
import os
from typing import Optional, Tuple

import numpy as np
from mmengine.logging import print_log

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_jpeg_roi.so')
_OK = 0  # csrc/jpeg_roi.c: 1 is a libjpeg error, 2 a file for the ordinary decoder
_decoder = None
_loaded = False


def _load():
    global _decoder, _loaded
    if _loaded:
        return _decoder
    _loaded = True
    try:
        library = ctypes.CDLL(LIBRARY)
    except OSError as exc:
        print_log(f'JPEG region decoding is off ({LIBRARY}: {exc.__class__.__name__}); crops '
                  'decode the whole image, which is slower. Build it with `make jpeg-roi` '
                  '(needs a C compiler and libjpeg62-turbo-dev).', logger='current', level=30)
        return None
    decoder = library.jroi_decode
    decoder.restype = ctypes.c_int
    decoder.argtypes = ([ctypes.c_char_p, ctypes.c_ulong] + [ctypes.c_int] * 7 +
                        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int])
    _decoder = decoder
    return decoder


def available() -> bool:
    """Whether the region decoder is built (logs once, at the first call, when it is not)."""
    return _load() is not None


def decode_region(data: bytes, size: Tuple[int, int], reduce: int,
                  box: Tuple[int, int, int, int]) -> Optional[np.ndarray]:
    """Rows ``y1:y2``, columns ``x1:x2`` of the JPEG decoded at ``1 / reduce`` scale, as BGR.

    The caller has read and checked the header (size within ``max_pixels``, complete file, EXIF
    orientation 1); ``box = (x1, y1, x2, y2)`` is in reduced pixels, within ``ceil(size /
    reduce)``.

    Args:
        data: The JPEG's bytes.
        size: ``(height, width)`` from the header, full scale.
        reduce: 1, 2, 4 or 8.
        box: ``(x1, y1, x2, y2)``, exclusive ends, on the reduced image.

    Returns:
        A C-contiguous ``(y2 - y1, x2 - x1, 3)`` uint8 array, or None when this decoder does not
        take the file (not built, CMYK, a libjpeg warning or error, a size unlike the header's):
        the caller then decodes it the ordinary way, whose checks and errors apply.
    """
    decoder = _load()
    if decoder is None:
        return None
    x1, y1, x2, y2 = box
    height, width = size
    out = np.empty((y2 - y1, x2 - x1, 3), np.uint8)
    status = decoder(data, len(data), reduce, -(-width // reduce), -(-height // reduce), x1, y1,
                     x2 - x1, y2 - y1, out.ctypes.data, None, 0)
    return out if status == _OK else None
