"""``DecodeCrop``: the base of the loaders that decode, crop and resize in one step."""
from __future__ import annotations

from abc import abstractmethod
from typing import Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as tv_functional

from ... import device as devices
from ...utils.errors import ExplainedValueError
from ..decode import check_declared_size, decode_image, jpeg_header
from ..image_header import displayed_size
from ..image_layout import planar
from ..jpeg_roi import decode_region
from .load_image import LoadImageRobust, bgr_image


def resize_hwc(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """An ``(H, W, C)`` uint8 array resized to ``size=(height, width)`` by torchvision's
    antialiased bilinear ``resize`` (Pillow's filter within one grey level, without Pillow's
    image type; its uint8 channels-last kernel works on the NumPy buffer), as a C-contiguous
    ``(height, width, C)`` uint8 array."""
    if image.shape[:2] == tuple(size):
        return np.ascontiguousarray(image)
    height, width, channels = image.shape
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    with torch.inference_mode():
        # torchvision's choice (torchvision.transforms.v2.functional._geometry.
        # _do_native_uint8_resize_on_cpu; 0.16 took the float path on AVX-512 too, within one
        # grey level); ARM, where 0.17+ also takes the uint8 path, keeps calling torchvision
        if devices.cpu_uint8_resize():
            # torchvision's own call on such a CPU, without its per-call checks (0.01 ms): a
            # 1CHW view whose batch stride is the image's size, so that the kernel writes its
            # output channels-last, in HWC order, with no repacking (pytorch#68430)
            out = F.interpolate(
                tensor.as_strided((1, channels, height, width),
                                  (height * width * channels, 1, width * channels, channels)),
                size=list(size), mode='bilinear', align_corners=False, antialias=True)[0]
        else:  # torchvision then resizes in float and rounds
            out = tv_functional.resize(tensor.permute(2, 0, 1), list(size), antialias=True)
    return np.ascontiguousarray(out.permute(1, 2, 0).numpy())


class DecodeCrop(LoadImageRobust):
    """Load (robustly, as ``LoadImageRobust``), crop a box chosen on the full-size image, resize.

    What mmcv and mmpretrain lack: their crops run after a full-size decode, and their Pillow
    resize converts to and from Pillow's image type. Here the box is chosen from the JPEG header
    alone (:func:`~resnest_mm.datasets.decode.jpeg_header`), the JPEG is decoded at 1/2, 1/4 or
    1/8 size in the DCT whenever the box still covers the output size at that scale, only the
    box's region of it is decoded (:mod:`~resnest_mm.datasets.jpeg_roi`, when built; rotated and
    CMYK JPEGs are decoded whole), and the crop is resized with Pillow's antialiased bilinear
    filter by torchvision's uint8 kernel (:func:`resize_hwc`).
    Files that are not plain JPEGs (PNG, broken headers) are decoded in full first; the result
    is the same crop. With a reduction the box snaps to the reduced pixel grid (edges move by at
    most ``reduce / 2`` source pixels, less than half an output pixel).

    Subclasses define :meth:`crop_box`. Added keys: ``img`` (the resized crop), ``img_shape``,
    ``ori_shape`` (the full image's size), ``crop_bbox`` (the box used: x1, y1, x2, y2 on the
    full image, exclusive ends), ``decode_reduce`` (the DCT reduction used).

    Args:
        scale (int | (int, int)): Output size, a side or ``(width, height)`` as in mmpretrain.
        dct_reduce (bool): Allow the reduced-size decode. Defaults to True.
        region_decode (bool): Decode only the box's region of a JPEG when the region decoder is
            built (same pixels as the whole decode, cropped). Defaults to True.
        planar (bool): Store the output as CHW planes behind its ``(H, W, 3)`` view, which
            ``PackInputs`` packs without copying (for a pipeline that packs next; OpenCV-based
            steps prefer interleaved pixels). Defaults to False.
        **kwargs: ``LoadImageRobust``'s arguments (``on_error``, ``max_pixels``,
            ``backend_args`` ...).
    """

    def __init__(self, scale: Union[int, Sequence[int]], dct_reduce: bool = True,
                 region_decode: bool = True, planar: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.to_float32:
            raise ExplainedValueError(
                f'{type(self).__name__}: to_float32 is not supported; the crop is resized as '
                'uint8')
        width, height = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if width <= 0 or height <= 0:
            raise ExplainedValueError(f'{type(self).__name__}: scale={scale!r} must be positive')
        self.out_size = (int(height), int(width))
        self.placeholder_shape = self.out_size  # a stand-in for an unreadable file
        self.dct_reduce = dct_reduce
        self.region_decode = region_decode
        self.planar = planar

    @abstractmethod
    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """``(top, left, crop_height, crop_width)`` on a ``height x width`` image."""

    def _reduction(self, crop_h: int, crop_w: int) -> int:
        if not self.dct_reduce:
            return 1
        out_h, out_w = self.out_size
        for factor in (8, 4, 2):
            if crop_h // factor >= out_h and crop_w // factor >= out_w:
                return factor
        return 1

    def _decode(self, data: bytes, path: str, results: dict) -> np.ndarray:
        header = jpeg_header(data)
        if header is None:  # not a plain JPEG: decode first, then choose on the real size
            image = decode_image(data, path, max_pixels=self.max_pixels)
            height, width = image.shape[:2]
            top, left, crop_h, crop_w = self.crop_box(height, width)
            crop, box, reduce = self._crop(image, top, left, crop_h, crop_w, 1)
        else:
            height, width = displayed_size(header)
            top, left, crop_h, crop_w = self.crop_box(height, width)
            reduce = self._reduction(crop_h, crop_w)
            crop = None
            if self.region_decode and header.orientation == 1:  # the box's pixels alone
                check_declared_size(path, width, height, header.pixels, self.max_pixels)
                box = _snap(top, left, crop_h, crop_w, reduce, -(-height // reduce),
                            -(-width // reduce))
                crop = decode_region(data, (height, width), reduce, box)
            if crop is None:  # rotated, CMYK, odd: the whole image, with every check
                image = decode_image(data, path, reduce, self.max_pixels)
                crop, box, reduce = self._crop(image, top, left, crop_h, crop_w, reduce)
        x1, y1, x2, y2 = box
        results['ori_shape'] = (height, width)
        results['crop_bbox'] = np.array([x1 * reduce, y1 * reduce, min(width, x2 * reduce),
                                         min(height, y2 * reduce)])
        results['decode_reduce'] = reduce
        return self._resize(crop)

    def _resize(self, crop: np.ndarray) -> np.ndarray:
        image = resize_hwc(crop, self.out_size)
        return planar(image) if self.planar else image

    @staticmethod
    def _crop(image: np.ndarray, top: int, left: int, crop_h: int, crop_w: int, reduce: int):
        x1, y1, x2, y2 = _snap(top, left, crop_h, crop_w, reduce, *image.shape[:2])
        return image[y1:y2, x1:x2], (x1, y1, x2, y2), reduce

    def _from_array(self, image: np.ndarray, results: dict) -> np.ndarray:
        image = bgr_image(image)
        height, width = image.shape[:2]
        top, left, crop_h, crop_w = self.crop_box(height, width)
        results['ori_shape'] = (height, width)
        results['crop_bbox'] = np.array([left, top, left + crop_w, top + crop_h])
        results['decode_reduce'] = 1
        return self._resize(image[top:top + crop_h, left:left + crop_w])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.out_size[::-1]}, '
                f'dct_reduce={self.dct_reduce}, region_decode={self.region_decode}, '
                f'planar={self.planar}, '
                f'on_error={self.on_error!r}, '
                f'max_pixels={self.max_pixels})')


def _snap(top: int, left: int, crop_h: int, crop_w: int, reduce: int, full_h: int,
          full_w: int) -> Tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of a full-scale box on the image decoded at ``1 / reduce``.

    libjpeg scales by exactly 1 / reduce (the last, partial pixel makes the size a ceil). The box
    snaps to the reduced grid: each edge moves by at most reduce / 2 source pixels, under half an
    output pixel since reduce <= crop / output.
    """
    scale = 1. / reduce
    y1 = min(full_h - 1, round(top * scale))
    x1 = min(full_w - 1, round(left * scale))
    y2 = max(y1 + 1, min(full_h, round((top + crop_h) * scale)))
    x2 = max(x1 + 1, min(full_w, round((left + crop_w) * scale)))
    return x1, y1, x2, y2
