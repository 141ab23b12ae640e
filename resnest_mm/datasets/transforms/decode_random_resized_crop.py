"""``DecodeRandomResizedCrop``: mmpretrain's ``RandomResizedCrop`` fused with decoding."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from mmpretrain.datasets.transforms import RandomResizedCrop

from ...registry import TRANSFORMS
from .decode_crop import DecodeCrop


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(DecodeCrop):
    """Replaces ``LoadImageRobust`` + ``RandomResizedCrop`` and decodes only what the crop needs.

    The box is drawn by mmpretrain's ``RandomResizedCrop.rand_crop_params`` (the same
    distribution: area fraction, log-uniform aspect ratio, ``max_attempts`` tries, then the
    centre-crop fallback) on the full image's size; see :class:`DecodeCrop` for the rest.

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
        # rand_crop_params reads only the shape: a zero-channel array costs no memory.
        return self.sampler.rand_crop_params(np.empty((height, width, 0), np.uint8))
