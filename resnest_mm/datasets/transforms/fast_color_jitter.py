"""``FastColorJitter``: torchvision's ColorJitter semantics on uint8 BGR arrays, without floats."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS
from ...utils.errors import ExplainedValueError
from ..image_layout import interleaved

Range = Union[float, Sequence[float]]
# BT.601 luma weights in BGR order (Pillow's convert('L'), OpenCV's COLOR_BGR2GRAY)
_GREY = (0.114, 0.587, 0.299)
_EYE = np.eye(3, 4, dtype=np.float32)
_BLEND = np.eye(3, 4, dtype=np.float32) - np.array(_GREY + (0., ), np.float32)
_BLEND_BASE = _EYE - _BLEND  # every row the grey weights: factor 0 is the grey image


def _factor_range(value: Range, name: str, centre: float, bound: Tuple[float, float]
                  ) -> Optional[Tuple[float, float]]:
    low, high = ((centre - value, centre + value) if isinstance(value, (int, float))
                 else tuple(value))
    if isinstance(value, (int, float)) and value < 0:
        raise ExplainedValueError(f'FastColorJitter: {name}={value} must be non-negative')
    low = max(low, bound[0])
    if not bound[0] <= low <= high <= bound[1]:
        raise ExplainedValueError(
            f'FastColorJitter: {name} range ({low}, {high}) must lie in {bound}')
    return None if low == high == centre else (low, high)


def _shift_hue(bgr: np.ndarray, factor: float) -> np.ndarray:
    # Through Pillow's HSV, as torchvision: OpenCV's HSV rounds differently (up to ~14 levels
    # apart on saturated colours). Only hue pays for the conversion; the seed uses none.
    from PIL import Image
    hsv = np.array(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).convert('HSV'))
    hsv[..., 0] += np.uint8(int(factor * 255) % 256)  # truncated and wrapped, as torchvision
    return np.ascontiguousarray(np.asarray(Image.fromarray(hsv, 'HSV').convert('RGB'))[..., ::-1])


@TRANSFORMS.register_module()
class FastColorJitter(BaseTransform):
    """Random brightness, contrast, saturation and hue, in random order, on uint8 images.

    Same parameters and distribution as mmpretrain's ``ColorJitter`` and torchvision's (the
    seed's): each factor uniform in ``[max(0, 1 - x), 1 + x]`` (hue in ``[-x, x]``), the four
    adjustments in a random order, each rounded and clipped to uint8 as Pillow's ``ImageEnhance``
    does. What mmpretrain's lacks is speed: its cv2 backend converts to float32 for every
    adjustment (and truncates instead of rounding), its Pillow backend converts images both ways;
    here each adjustment is one pass of ``cv2.transform`` (a 3 x 4 affine map of each pixel's
    channels, rounded and saturated) over the uint8 array (~10 us at 224 px).

    * brightness ``f``: ``img * f``;
    * contrast ``f``: blend with the mean of the grey image, ``img * f + mean * (1 - f)``;
    * saturation ``f``: blend with the grey image, ``img * f + grey * (1 - f)``;
    * hue ``h``: shift the hue channel (0-255, Pillow's HSV) by ``int(h * 255)``, wrapping
      (through Pillow, so not faster than mmpretrain's).

    Required keys: ``img`` (BGR uint8). Modified keys: ``img``.

    Args:
        brightness, contrast, saturation (float | (float, float)): Jitter amounts or ranges.
        hue (float | (float, float)): Jitter amount in ``[0, 0.5]`` or range in ``[-0.5, 0.5]``.
    """

    def __init__(self, brightness: Range = 0., contrast: Range = 0., saturation: Range = 0.,
                 hue: Range = 0.) -> None:
        inf = float('inf')
        self.brightness = _factor_range(brightness, 'brightness', 1., (0., inf))
        self.contrast = _factor_range(contrast, 'contrast', 1., (0., inf))
        self.saturation = _factor_range(saturation, 'saturation', 1., (0., inf))
        self.hue = _factor_range(hue, 'hue', 0., (-0.5, 0.5))

    @cache_randomness
    def _rand_params(self):
        order = np.random.permutation(4)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        factors = [None if r is None else np.random.uniform(*r) for r in ranges]
        return order, factors

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ExplainedValueError(f'FastColorJitter needs a BGR uint8 image, got {img.dtype} '
                                      f'{img.shape}; put it before Lighting/normalisation')
        order, factors = self._rand_params()
        if all(factor is None for factor in factors):
            return results
        img = interleaved(img)  # RandomFlip's view: OpenCV would copy it slowly at every call
        for index in order:
            factor = factors[index]
            if factor is None:
                continue
            # each adjustment one affine map of the pixel's channels, rounded and saturated
            if index == 0:
                img = cv2.transform(img, _EYE * factor)
            elif index == 1:
                # Pillow rounds the mean of the grey image: the luma of the channel means
                blue, green, red, _ = cv2.mean(img)
                mean = int(blue * _GREY[0] + green * _GREY[1] + red * _GREY[2] + 0.5)
                matrix = _EYE * factor
                matrix[:, 3] = mean * (1 - factor)
                img = cv2.transform(img, matrix)
            elif index == 2:  # blended with the grey image: grey + factor * (pixel - grey)
                img = cv2.transform(img, _BLEND_BASE + _BLEND * factor)
            else:
                img = _shift_hue(img, factor)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, '
                f'saturation={self.saturation}, hue={self.hue})')
