"""``DecodeOnDevicePreprocessor``: decode, crop, resize, flip and jitter a batch on the device."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from ... import device as devices
from ...registry import MODELS
from ..augment_on_device_preprocessor import AugmentOnDevicePreprocessor
from ..decode import UnreadableImageError, decode_image
from ..unreadable_log import UnreadableLog, record_unreadable

# BT.601 luma in BGR order, as OpenCV's COLOR_BGR2GRAY (FastColorJitter's grey image).
_GREY = (0.114, 0.587, 0.299)


def _decode_jpegs(datas: List[torch.Tensor], where: torch.device) -> List[Optional[torch.Tensor]]:
    """RGB ``(3, H, W)`` uint8 images on ``where``; None for each file the decoder refuses."""
    from torchvision.io import ImageReadMode, decode_jpeg
    try:
        return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=where))
    except RuntimeError:  # one bad file fails the batch: find it
        images: List[Optional[torch.Tensor]] = []
        for data in datas:
            try:
                images.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=where))
            except RuntimeError:
                images.append(None)
        return images


def _saturate(image: torch.Tensor) -> torch.Tensor:
    """What OpenCV's uint8 arithmetic does to a result: round half to even, clip to 0-255."""
    return image.round_().clamp_(0, 255)


def _jitter(image: torch.Tensor, order: Sequence[int], factors: Sequence[Optional[float]]
            ) -> torch.Tensor:
    """FastColorJitter's brightness, contrast and saturation on a BGR float image of uint8
    values, each step rounded and clipped as its uint8 OpenCV calls are."""
    grey_weights = image.new_tensor(_GREY).view(3, 1, 1)
    for index in order:
        factor = factors[index]
        if factor is None:
            continue
        if index == 0:
            image = _saturate(image * factor)
        elif index == 1:
            # rounded as Pillow's grey mean, kept on the device (no synchronisation per image)
            mean = torch.floor(_saturate((image * grey_weights).sum(0)).mean() + 0.5)
            image = _saturate(image * factor + mean * (1 - factor))
        elif index == 2:
            grey = _saturate((image * grey_weights).sum(0, keepdim=True))
            image = _saturate(image * factor + grey * (1 - factor))
    return image


@MODELS.register_module()
class DecodeOnDevicePreprocessor(AugmentOnDevicePreprocessor):
    """mmpretrain's ``ClsDataPreprocessor`` that first decodes the batch's JPEGs on the device.

    What mmpretrain lacks: its pipelines decode and augment every image in the loader workers,
    on the CPU, which runs out first on an accelerator that trains thousands of images a
    second. With ``decode_on_device`` the workers only read the files and draw the random
    choices (:class:`ReadForDeviceDecode`); this preprocessor decodes the batch with
    ``torchvision.io.decode_jpeg`` where :func:`resnest_mm.device.jpeg_decode_device` says
    (nvJPEG on a GPU, DVPP through ``torchvision_npu`` on an NPU, else the CPU), then for each
    image crops the worker's box, resizes it to the output size (antialiased bilinear, as the
    CPU path), flips it, applies FastColorJitter's draws and FastLighting's noise, all on the
    device, and hands the float batch to ``ClsDataPreprocessor`` (BGR to RGB, normalisation,
    one-hot, batch augments) as the CPU path's batch would be.

    A file the device decoder refuses is decoded by the CPU decoder
    (:func:`~resnest_mm.datasets.decode.decode_image`, every check included); one that cannot be
    read at all is recorded in ``unreadable_log``, which ``UnreadableImageHook`` gives it
    (counted, listed, limited), and left out of the batch, as the CPU path skips it. Images
    the workers already decoded (not JPEGs,
    CMYK, rotated) only get the flip, jitter and lighting here. Batches without
    ``device_augment`` (validation) pass through unchanged.

    Args:
        **kwargs: ``ClsDataPreprocessor``'s arguments.
    """

    unreadable_log: Optional[UnreadableLog] = None  # given by UnreadableImageHook

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples')
        if not samples or not samples[0].metainfo.get('device_augment'):
            return super().forward(data, training)
        images, kept = self._augment(data['inputs'], samples)
        return super().forward(dict(data, inputs=images, data_samples=kept), training)

    def _augment(self, inputs: List[torch.Tensor], samples: list
                 ) -> Tuple[torch.Tensor, list]:
        where = devices.jpeg_decode_device(self.device)
        encoded = [i for i, x in enumerate(inputs) if x.ndim == 1]
        decoded = dict(zip(encoded, _decode_jpegs([inputs[i] for i in encoded], where)))
        images, kept = [], []
        for index, (image, sample) in enumerate(zip(inputs, samples)):
            if index in decoded:
                image = decoded[index]
                if image is None:  # refused by the device decoder: the CPU's, with its checks
                    image = self._decode_on_cpu(inputs[index], sample)
                    if image is None:
                        continue
                image = self._crop_resize(image.to(self.device), sample)
            else:  # decoded and cropped by the worker (BGR, CHW)
                image = image.to(self.device).float()
            if sample.flip:
                image = image.flip(-1)
            if sample.jitter_order is not None:
                image = _jitter(image, sample.jitter_order, sample.jitter_factors)
            images.append(image)
            kept.append(sample)
        if not images:
            raise UnreadableImageError(
                f'all {len(inputs)} files of a batch were unreadable (logged above, first '
                f'{samples[0].get("img_path")}); check the data set')
        return torch.stack(images), kept

    def _decode_on_cpu(self, data: torch.Tensor, sample) -> Optional[torch.Tensor]:
        path = sample.get('img_path', '<bytes>')
        try:
            bgr = decode_image(data.numpy().tobytes(), path)
        except UnreadableImageError as exc:
            record_unreadable(self.unreadable_log, path, str(exc))
            return None
        return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1)

    @staticmethod
    def _crop_resize(rgb: torch.Tensor, sample) -> torch.Tensor:
        """The worker's box of an RGB ``(3, H, W)`` uint8 image, resized, as a BGR float image."""
        x1, y1, x2, y2 = (int(v) for v in sample.crop_bbox)
        crop = rgb[:, y1:y2, x1:x2].flip(0).float().unsqueeze(0)
        size = tuple(sample.img_shape)
        if crop.shape[-2:] != size:
            crop = F.interpolate(crop, size=size, mode='bilinear', antialias=True,
                                 align_corners=False)
        return _saturate(crop[0])
