"""``ReadForDeviceDecode``: the loader worker's half of decoding on the device."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...registry import TRANSFORMS
from ...utils.errors import ExplainedValueError
from ..decode import check_declared_size, jpeg_header
from ..transforms.decode_random_resized_crop import DecodeRandomResizedCrop
from ..transforms.fast_lighting import LIGHTING_KEY

# What PackInputs must carry to the device for DecodeOnDevicePreprocessor.
DEVICE_META_KEYS = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'crop_bbox',
                    'device_augment', 'flip', 'jitter_order', 'jitter_factors', LIGHTING_KEY)


@TRANSFORMS.register_module()
class ReadForDeviceDecode(DecodeRandomResizedCrop):
    """Read the file and draw every random choice of the train pipeline; decode nothing.

    With ``decode_on_device`` the loader workers replace ``DecodeRandomResizedCrop``,
    ``RandomFlip``, ``FastColorJitter`` and ``FastLighting`` by this transform, and
    :class:`DecodeOnDevicePreprocessor` decodes the batch on the accelerator
    (``torchvision.io.decode_jpeg``), then crops, resizes, flips, jitters and adds the lighting
    noise there. The choices are drawn by those transforms' own methods in the pipeline's order
    (crop box, flip, jitter order and factors, lighting noise), so a sample gets the same ones
    as on the CPU path for the same seed. The crop box is chosen on the full image (no DCT
    reduction: the device decodes in full).

    The file is read and its header checked here as by every loader (size on disk, declared
    pixels within ``max_pixels``, a complete JPEG); ``img`` is then the file's bytes (a 1-D
    uint8 array). What the device decoder is not given -- not a JPEG, CMYK, an EXIF rotation --
    is decoded and cropped here as :class:`DecodeRandomResizedCrop` does (``img`` is the
    resized crop), and unreadable files are recorded and skipped as there.

    Added keys: ``img``, ``img_shape`` (the output size), ``ori_shape``, ``crop_bbox`` (x1, y1,
    x2, y2 on the full image), ``device_augment`` (True), ``flip`` (bool), ``jitter_order`` and
    ``jitter_factors`` (FastColorJitter's draws, or None), ``lighting_offset`` (FastLighting's
    per-channel noise, or None).

    Args:
        scale, crop_ratio_range, aspect_ratio_range, max_attempts: As
            :class:`DecodeRandomResizedCrop`.
        flip_prob (float): Horizontal flip probability (``RandomFlip``). Defaults to 0.
        color_jitter (dict, optional): ``FastColorJitter``'s arguments (no hue). Defaults to None.
        lighting (dict, optional): ``FastLighting``'s arguments. Defaults to None.
        **kwargs: ``LoadImageRobust``'s arguments (``on_error``, ``max_pixels`` ...).
    """

    def __init__(self, scale, flip_prob: float = 0., color_jitter: Optional[dict] = None,
                 lighting: Optional[dict] = None, **kwargs) -> None:
        kwargs.setdefault('dct_reduce', False)  # the device decodes in full
        super().__init__(scale, **kwargs)
        from mmcv.transforms import RandomFlip

        from ..transforms import FastColorJitter, FastLighting
        self.flip = RandomFlip(prob=float(flip_prob), direction='horizontal') if flip_prob \
            else None
        self.color_jitter = FastColorJitter(**color_jitter) if color_jitter else None
        if self.color_jitter is not None and self.color_jitter.hue is not None:
            raise ExplainedValueError('ReadForDeviceDecode: hue jitter is not done on the device; '
                                      'drop hue from FastColorJitter or decode on the CPU')
        self.lighting = FastLighting(**lighting) if lighting else None
        if self.lighting is not None and self.lighting.to_rgb:
            raise ExplainedValueError('ReadForDeviceDecode: FastLighting(to_rgb=True) is not done '
                                      'on the device; give the eigenvectors in BGR order')

    def _decode(self, data: bytes, path: str, results: dict) -> np.ndarray:
        header = jpeg_header(data)
        if header is None or header.orientation != 1 or header.components not in (1, 3):
            return super()._decode(data, path, results)  # decoded and cropped here
        check_declared_size(path, header.width, header.height, header.pixels, self.max_pixels)
        top, left, crop_h, crop_w = self.crop_box(header.height, header.width)
        results['ori_shape'] = (header.height, header.width)
        results['crop_bbox'] = np.array([left, top, left + crop_w, top + crop_h])
        results['decode_reduce'] = 1
        return np.frombuffer(data, np.uint8).copy()  # writable: torch.from_numpy wants that

    def transform(self, results: dict) -> Optional[dict]:
        results = super().transform(results)
        if results is None:
            return None
        results['img_shape'] = self.out_size
        results['device_augment'] = True
        results['flip'] = self.flip is not None and self.flip._choose_direction() is not None
        results['jitter_order'] = results['jitter_factors'] = results[LIGHTING_KEY] = None
        if self.color_jitter is not None:
            order, factors = self.color_jitter._rand_params()
            results['jitter_order'], results['jitter_factors'] = list(order), factors
        if self.lighting is not None:
            results[LIGHTING_KEY] = self.lighting._offset()
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.out_size[::-1]}, flip={self.flip}, '
                f'color_jitter={self.color_jitter}, lighting={self.lighting})')
