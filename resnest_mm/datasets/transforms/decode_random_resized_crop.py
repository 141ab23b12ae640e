"""``DecodeRandomResizedCrop``: mmpretrain's ``RandomResizedCrop`` fused with decoding."""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
from mmpretrain.datasets.transforms import RandomResizedCrop

from ...registry import TRANSFORMS
from .decode_crop import DecodeCrop


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(DecodeCrop):
    """Replaces ``LoadImageRobust`` + ``RandomResizedCrop`` and decodes only what the crop needs.

    The box is drawn as mmpretrain 1.2's ``RandomResizedCrop.rand_crop_params`` draws it (area
    fraction, log-uniform aspect ratio, ``max_attempts`` tries, then the centre-crop fallback):
    the same ``np.random`` calls in the same order, so the same boxes for the same seed (tested),
    on the full image's size and in two thirds of its time (it needs an array, its decorator and
    a tuple per draw); see :class:`DecodeCrop` for the rest.

    Args:
        scale (int | (int, int)): Output size.
        crop_ratio_range (tuple): Area fraction range. The seed uses (0.1, 1.0).
        aspect_ratio_range (tuple): Aspect ratio range. Defaults to (3/4, 4/3).
        max_attempts (int): Draws before the fallback. Defaults to 10.
        **kwargs: :class:`DecodeCrop`'s and ``LoadImageRobust``'s arguments.
    """

    def __init__(self, scale, crop_ratio_range: Sequence[float] = (0.08, 1.0),
                 aspect_ratio_range: Sequence[float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10, **kwargs) -> None:
        super().__init__(scale, **kwargs)
        self.sampler = RandomResizedCrop(scale, crop_ratio_range=crop_ratio_range,
                                         aspect_ratio_range=aspect_ratio_range,
                                         max_attempts=max_attempts)

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        area = height * width
        low, high = self.sampler.crop_ratio_range
        log_ratio = (math.log(self.sampler.aspect_ratio_range[0]),
                     math.log(self.sampler.aspect_ratio_range[1]))
        for _ in range(self.sampler.max_attempts):
            target_area = np.random.uniform(low, high) * area
            aspect_ratio = math.exp(np.random.uniform(*log_ratio))
            target_w = int(round(math.sqrt(target_area * aspect_ratio)))
            target_h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < target_w <= width and 0 < target_h <= height:
                top = np.random.randint(0, height - target_h + 1)
                left = np.random.randint(0, width - target_w + 1)
                return top, left, target_h, target_w
        # mmpretrain's fallback: the central crop of the nearest allowed aspect ratio
        return _central_box(height, width, self.sampler.aspect_ratio_range)


def _central_box(height: int, width: int, ratios: Sequence[float]) -> Tuple[int, int, int, int]:
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratios):
        target_w, target_h = width, int(round(width / min(ratios)))
    elif in_ratio > max(ratios):
        target_w, target_h = int(round(height * max(ratios))), height
    else:
        target_w, target_h = width, height
    return (height - target_h) // 2, (width - target_w) // 2, target_h, target_w
