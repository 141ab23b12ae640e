"""Antialiased bilinear resizing of uint8 images, as Pillow does it, 3-5x faster.

torchvision's ``RandomResizedCrop`` and ``Resize`` on PIL images (the seed's pipeline) resize with
Pillow's antialiased bilinear filter. Pillow needs a conversion to its own image type and back,
and mmcv's ``imresize(backend='pillow')`` pays both; OpenCV's ``INTER_LINEAR`` is fast but does
not antialias when shrinking. PyTorch's uint8 channels-last kernel for
``interpolate(mode='bilinear', antialias=True)`` implements Pillow's filter (outputs differ by at
most one grey level) and works in place on the NumPy buffer: 0.21 ms instead of 1.35 ms for a
300x300 crop to 224x224 on this machine's CPU.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch.nn import functional as F


def resize_bilinear(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, C)`` uint8 image to ``size=(height, width)``, antialiased like Pillow.

    Args:
        image: uint8 array, any channel count, any strides.
        size: Output ``(height, width)``.

    Returns:
        A C-contiguous ``(height, width, C)`` uint8 array.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f'resize_bilinear expects an (H, W, C) uint8 image, got '
                         f'{image.dtype} {image.shape}')
    if image.shape[:2] == tuple(size):
        return np.ascontiguousarray(image)
    # unsqueeze before permute: canonical channels-last strides, so the output is channels-last
    # too and turning it back into HWC costs no copy (permute-then-unsqueeze gives NCHW output
    # and a 0.3 ms transpose).
    tensor = torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0).permute(0, 3, 1, 2)
    with torch.inference_mode():
        out = F.interpolate(tensor, size=tuple(size), mode='bilinear', antialias=True,
                            align_corners=False)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())
