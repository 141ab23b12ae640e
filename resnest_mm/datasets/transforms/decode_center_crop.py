"""``DecodeCenterCrop``: mmpretrain's ``EfficientNetCenterCrop`` fused with decoding."""
from __future__ import annotations

from typing import Tuple

from ...registry import TRANSFORMS
from ...utils.errors import ExplainedValueError
from .decode_crop import DecodeCrop


@TRANSFORMS.register_module()
class DecodeCenterCrop(DecodeCrop):
    """Replaces ``LoadImageRobust`` + ``EfficientNetCenterCrop`` (the seed's evaluation crop).

    The centre square of ``crop_size / (crop_size + crop_padding)`` of the short side (224/256 for
    the seed), resized to ``crop_size``; see :class:`DecodeCrop` for how it is decoded. Defaults to
    ``on_error='placeholder'`` (evaluation scores every file) and ``dct_reduce=False``: the
    full-size decode gives mmpretrain's pixels (within 2 grey levels), so accuracies stay
    comparable with published ones; set it True for speed on large photos. Defaults to
    ``planar=True``: an evaluation pipeline packs next, and ``PackInputs`` then copies nothing.
    The in1k configs set ``planar=False`` and pack with ``PackForDevice``, which leaves the CHW
    order to the data preprocessor: the worker then copies nothing at all.

    Args:
        crop_size (int): Output side. Defaults to 224.
        crop_padding (int): Defaults to 32.
        **kwargs: :class:`DecodeCrop`'s and ``LoadImageRobust``'s arguments.
    """

    def __init__(self, crop_size: int = 224, crop_padding: int = 32, **kwargs) -> None:
        kwargs.setdefault('on_error', 'placeholder')
        kwargs.setdefault('dct_reduce', False)
        kwargs.setdefault('planar', True)
        super().__init__(crop_size, **kwargs)
        if crop_padding < 0:
            raise ExplainedValueError(f'DecodeCenterCrop: crop_padding={crop_padding} must be >= 0')
        self.crop_size = crop_size
        self.crop_padding = crop_padding

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        side = self.crop_size / (self.crop_size + self.crop_padding) * min(height, width)
        side_int = max(1, int(side))  # mmcv.imcrop truncates the inclusive end: floor(side)
        top = max(0, int(round((height - side) / 2.)))
        left = max(0, int(round((width - side) / 2.)))
        return top, left, min(side_int, height - top), min(side_int, width - left)
