"""``FastLighting``: mmpretrain's ``Lighting`` (AlexNet PCA noise) in one float32 add."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS
from ..image_layout import planar

LIGHTING_KEY = 'lighting_offset'  # the sample's noise with on_device, for the data preprocessor


@TRANSFORMS.register_module()
class FastLighting(BaseTransform):
    """Add ``eigvec @ (alpha * eigval)``, ``alpha ~ N(0, alphastd)``, to every pixel.

    The same noise as mmpretrain's ``Lighting`` (mmcv's ``adjust_lighting``) and the seed's, with
    the same arguments. What mmpretrain 1.2's lacks: it casts the result back to the input's
    dtype, so on a uint8 image (what every loader yields) a dark pixel pushed below 0 wraps round
    to white and a bright one above 255 to black; and it is slower. Here the result is float32
    and, like the seed's (which works on float tensors), not clipped. A uint8 BGR image comes out
    as an ``(H, W, 3)`` view of CHW planes, written in one pass
    (:func:`~resnest_mm.datasets.image_layout.planar`), which ``PackInputs`` packs without
    copying it again.

    With ``on_device=True`` the noise is drawn here (the same draw) but added on the accelerator
    by :class:`~resnest_mm.datasets.AugmentOnDevicePreprocessor` (the model's data
    preprocessor), from the sample's ``lighting_offset``: the image stays uint8, a quarter of the
    bytes to collate, pin and copy, and the worker saves the float pass. The sums are the same.
    ``PackInputs`` must carry ``lighting_offset`` in its ``meta_keys``; the runner refuses a
    config where it or the preprocessor is missing (the noise would be dropped silently).

    Required keys: ``img``. Modified keys: ``img`` (float32; uint8 with ``on_device``). Added
    keys: ``lighting_offset`` (with ``on_device``: float32, one value per channel).

    Args:
        eigval (sequence of float): Eigenvalues of the pixel covariance, in the image's scale.
        eigvec (sequence of sequence of float): ``3 x n`` eigenvectors, rows in the image's
            channel order.
        alphastd (float): Noise standard deviation. Defaults to 0.1.
        to_rgb (bool): Convert BGR to RGB first, as mmpretrain's. Defaults to False.
        on_device (bool): Leave the addition to the data preprocessor on the device (see
            above). Defaults to False.
    """

    def __init__(self, eigval: Sequence[float], eigvec: Sequence[Sequence[float]],
                 alphastd: float = 0.1, to_rgb: bool = False, on_device: bool = False) -> None:
        self.eigval = np.asarray(eigval, dtype=np.float64)
        self.eigvec = np.asarray(eigvec, dtype=np.float64)
        if self.eigval.ndim != 1 or self.eigvec.shape != (3, self.eigval.shape[0]):
            raise ValueError(f'FastLighting: eigvec must be 3 x len(eigval), got eigval '
                             f'{self.eigval.shape} and eigvec {self.eigvec.shape}')
        self.alphastd = float(alphastd)
        self.to_rgb = to_rgb
        self.on_device = bool(on_device)

    @cache_randomness
    def _offset(self) -> np.ndarray:
        alpha = np.random.normal(0, self.alphastd, self.eigval.shape[0])
        return (self.eigvec @ (alpha * self.eigval)).astype(np.float32)

    def transform(self, results: dict) -> dict:
        img = results['img']
        offset = self._offset()
        if self.to_rgb:
            img = img[..., ::-1]
        uint8_image = img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        if self.on_device:
            # planes written once (PackInputs takes them as they are); the device adds the noise
            results['img'] = planar(img) if uint8_image else img
            results[LIGHTING_KEY] = offset
            return results
        if uint8_image:
            # Written once, as planes: PackInputs takes this layout without another copy.
            out = planar(img, offset)
        else:
            out = img.astype(np.float32)  # a fresh C-contiguous copy
            height, width = out.shape[:2]
            # One offset per channel: add a whole row at a time (numpy's loop over a length-3
            # last axis is ~8x slower than over a row).
            out.reshape(height, -1)[...] += np.tile(offset, width)
        results['img'] = out
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(eigval={self.eigval.tolist()}, '
                f'eigvec={self.eigvec.tolist()}, alphastd={self.alphastd}, to_rgb={self.to_rgb}, '
                f'on_device={self.on_device})')
