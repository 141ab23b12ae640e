"""``PackForDevice``: mmpretrain's ``PackInputs`` that leaves the CHW reordering to the device."""
from __future__ import annotations

from typing import Any

import numpy as np
from mmpretrain.datasets.transforms.formatting import PackInputs

from ...registry import TRANSFORMS
from ..image_layout import chw_view

# the steps that end a pipeline by packing a data sample (type names without scope)
PACK_TYPES = ('PackInputs', 'PackForDevice')


@TRANSFORMS.register_module()
class PackForDevice(PackInputs):
    """``PackInputs`` whose image tensor is a ``(C, H, W)`` view of the worker's ``(H, W, C)``
    pixels: packing copies nothing.

    What ``PackInputs`` does instead: it copies every C-contiguous ``(H, W, C)`` image into CHW
    order, a pass over every pixel in the loader worker (its only cheap case, planes already
    written by the transform before, costs that transform the same pass). Here the reordering
    is left to the data preprocessor, on the device, where the batch is copied anyway: stacking
    the batch writes it contiguous (``torch.stack``, in mmpretrain's ``ClsDataPreprocessor`` and
    in :class:`~resnest_mm.datasets.AugmentOnDevicePreprocessor`), and the batch is the same,
    bit for bit. A flipped view costs one ``cv2.flip``; images that are already planar, and
    other inputs, are packed as by ``PackInputs``.

    Args:
        **kwargs: ``PackInputs``' arguments.
    """

    @staticmethod
    def format_input(input_: Any) -> Any:
        if isinstance(input_, list):
            return [PackForDevice.format_input(item) for item in input_]
        if isinstance(input_, np.ndarray) and input_.ndim == 3:
            return chw_view(input_)
        return PackInputs.format_input(input_)
