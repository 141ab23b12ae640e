"""Memory layouts of ``(H, W, C)`` images between transforms: interleaved (HWC) and planar (CHW).

What numpy, OpenCV and mmcv lack between them: mmcv's ``RandomFlip`` returns ``np.flip`` views
(negative strides), which OpenCV copies pixel by pixel at every call (and ``np.ascontiguousarray``
as slowly: ~40x ``cv2.flip``'s time at 224 px); and mmpretrain's ``PackInputs`` copies every
C-contiguous image into CHW order, while it takes an array that already has CHW memory behind
its ``(H, W, C)`` view as it is. ``interleaved`` and ``planar`` make each layout change one fast
pass; ``chw_view`` makes none, for a data preprocessor that reorders the batch on the device.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch

# (rows reversed, columns reversed) -> cv2.flip's code
_FLIP_CODES = {(True, False): 0, (False, True): 1, (True, True): -1}


def interleaved(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous ``(H, W, C)`` array; a flipped view of one costs a ``cv2.flip``.

    Args:
        image: An ``(H, W, C)`` array with any strides.

    Returns:
        ``image`` itself when C-contiguous, else a C-contiguous copy.
    """
    if image.flags.c_contiguous:
        return image
    code = _FLIP_CODES.get((image.strides[0] < 0, image.strides[1] < 0))
    if code is not None and image.ndim == 3 and image.shape[2] <= 4:  # cv2.flip: <= 4 channels
        unflipped = image[::-1 if code != 1 else 1, ::-1 if code != 0 else 1]
        if unflipped.flags.c_contiguous:  # cv2 drops a single channel's axis: put it back
            return cv2.flip(unflipped, code).reshape(image.shape)
    return np.ascontiguousarray(image)


def planar(image: np.ndarray, offsets: Optional[np.ndarray] = None) -> np.ndarray:
    """An ``(H, W, 3)`` view of a C-contiguous ``(3, H, W)`` copy of ``image``, in one pass.

    ``PackInputs`` turns such a view into its CHW tensor without copying it again. With
    ``offsets``, the result is float32 ``image + offsets`` (one value per channel), the addition
    done while the planes are written.

    Args:
        image: An ``(H, W, 3)`` uint8 array, any strides.
        offsets: Three float offsets, or None to keep uint8.

    Returns:
        The ``(H, W, 3)`` view (uint8, or float32 with ``offsets``).
    """
    height, width = image.shape[:2]
    planes = cv2.split(interleaved(image))
    if offsets is None:
        out = np.empty((3, height, width), np.uint8)
        for index, plane in enumerate(planes):
            out[index] = plane
    else:
        out = np.empty((3, height, width), np.float32)
        for index, plane in enumerate(planes):  # writes into out[index]: no temporary
            cv2.add(plane, float(offsets[index]), dst=out[index], dtype=cv2.CV_32F)
    return out.transpose(1, 2, 0)


def chw_view(image: np.ndarray) -> torch.Tensor:
    """A ``(C, H, W)`` tensor over ``image``'s ``(H, W, C)`` memory: no copy when ``image`` is
    C-contiguous or already planar (a view of CHW memory), one ``cv2.flip`` for a flipped view.

    Args:
        image: An ``(H, W, C)`` array with any strides.

    Returns:
        The tensor, sharing memory with ``image`` (or with its interleaved copy); contiguous
        when ``image`` is planar, channels-last strided otherwise.
    """
    chw = image.transpose(2, 0, 1)
    if chw.flags.c_contiguous:
        return torch.from_numpy(chw)
    return torch.from_numpy(interleaved(image)).permute(2, 0, 1)
