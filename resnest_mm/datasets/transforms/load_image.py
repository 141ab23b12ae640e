"""``LoadImageRobust``: mmcv's ``LoadImageFromFile`` that survives ImageNet's oddities."""
from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from ...registry import TRANSFORMS
from ...utils.errors import ExplainedValueError
from ..decode import UnreadableImageError, decode_image
from ..decode_limits import (
    DEFAULT_MAX_DECODE_SECONDS,
    DEFAULT_MAX_SCANS,
    DecodeClock,
    DecodeLimitError,
    check_jpeg_scans,
    read_image_file,
)
from ..image_header import DEFAULT_MAX_PIXELS
from ..samplers.resumable_sampler import seed_sample
from ..unreadable_log import UnreadableLog, record_unreadable


def bgr_image(image: np.ndarray) -> np.ndarray:
    """A decoded image in memory as the loaders return files: ``H x W x 3`` uint8 BGR.

    Grey (``H x W`` or ``H x W x 1``) is repeated to three channels and BGRA loses its alpha,
    as :func:`~resnest_mm.datasets.decode.decode_image` does for files.

    Raises:
        ExplainedValueError: not uint8, or not one of those shapes.
    """
    if image.dtype != np.uint8:
        raise ExplainedValueError(f'an image array must be uint8 (0-255, BGR, as cv2.imread '
                                  f'gives), got {image.dtype}')
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ExplainedValueError(f'an image array must be H x W (grey), H x W x 3 (BGR) or '
                              f'H x W x 4 (BGRA), got shape {image.shape}')


@TRANSFORMS.register_module()
class LoadImageRobust(BaseTransform):
    """Load an image as BGR uint8 whatever its format, and never kill a worker.

    CMYK and grayscale JPEGs, PNGs named ``.JPEG``, RGBA and 16-bit PNGs and EXIF-rotated photos
    load as correct colour images (:func:`resnest_mm.datasets.decode.decode_image`). mmcv's
    ``LoadImageFromFile`` raises on the first bad file (or, with ``ignore_empty``, skips it
    silently). A file that cannot be read here -- empty, truncated, not an image, a header
    that lies, one declaring more than ``max_pixels`` (read from the header before
    decoding, so a 700-byte file claiming 40000 x 40000 pixels costs nothing), a JPEG of more
    than ``max_scans`` scans, a decode that took more than ``max_decode_seconds``, a FIFO or a
    device (:mod:`~resnest_mm.datasets.decode_limits`) -- is recorded in ``unreadable_log``
    (an :class:`~resnest_mm.datasets.unreadable_log.UnreadableLog` that ``UnreadableImageHook``
    gives it, then counts, lists and limits; logged as a warning without one) and then:

    * ``on_error='skip'`` (training): the transform returns None and mmengine's dataset draws
      another sample, so the batch still forms;
    * ``on_error='placeholder'`` (evaluation, where mmengine refuses None): a black
      ``placeholder_size`` image stands in, so the metric still covers every file and is, if
      anything, a lower bound.

    Being the first transform, it also seeds the sample's augmentation from the
    ``sample_key`` that a data set fed by ``ResumableSampler`` adds
    (:func:`~resnest_mm.datasets.samplers.seed_sample`).

    Required keys: ``img_path``, or ``img`` (a decoded BGR array: inference on images in memory,
    mmpretrain's ``ImageClassificationInferencer``). Added keys: ``img``, ``img_shape``,
    ``ori_shape``.

    Args:
        on_error (str): ``'skip'`` or ``'placeholder'``. Defaults to ``'skip'``.
        placeholder_size (int): Side of the placeholder image. Defaults to 256.
        to_float32 (bool): Return float32 instead of uint8. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
        max_pixels (int): Largest image decoded, in pixels as the file's header declares
            them; a local file over 8 bytes a pixel of it is not even read. Defaults to
            Pillow's decompression-bomb limit, 89,478,485 (a 9459 x 9459 image).
        max_scans (int): Most scans a JPEG may hold (each is a pass over the image; photos
            have about 10). Defaults to 100.
        max_decode_seconds (float, optional): Most CPU seconds one decode may take; a file
            over it is unreadable (and not decoded again by this loader). None for no limit.
            Defaults to 10.
    """

    unreadable_log: Optional[UnreadableLog] = None  # given by UnreadableImageHook

    def __init__(self, on_error: str = 'skip', placeholder_size: int = 256,
                 to_float32: bool = False, backend_args: Optional[dict] = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_scans: int = DEFAULT_MAX_SCANS,
                 max_decode_seconds: Optional[float] = DEFAULT_MAX_DECODE_SECONDS) -> None:
        if on_error not in ('skip', 'placeholder'):
            raise ExplainedValueError(f"LoadImageRobust.on_error={on_error!r} must be 'skip' or "
                                      "'placeholder'")
        if not isinstance(max_pixels, int) or max_pixels < 1:
            raise ExplainedValueError(f'{type(self).__name__}.max_pixels={max_pixels!r} must be '
                                      'a positive number of pixels')
        if not isinstance(max_scans, int) or max_scans < 1:
            raise ExplainedValueError(f'{type(self).__name__}.max_scans={max_scans!r} must be '
                                      'a positive number of scans')
        if max_decode_seconds is not None and not (
                isinstance(max_decode_seconds, (int, float)) and max_decode_seconds > 0):
            raise ExplainedValueError(f'{type(self).__name__}.max_decode_seconds='
                                      f'{max_decode_seconds!r} must be a positive number of '
                                      'seconds, or None')
        self.max_pixels = max_pixels
        self.max_scans = max_scans
        self.max_decode_seconds = max_decode_seconds
        self._over_time: Dict[str, str] = {}  # path -> reason: such a file is not decoded again
        self.on_error = on_error
        self.placeholder_size = placeholder_size
        self.placeholder_shape = (placeholder_size, placeholder_size)
        self.to_float32 = to_float32
        self.backend_args = backend_args

    def transform(self, results: dict) -> Optional[dict]:
        # First transform of the pipeline: seed this sample's augmentation (ResumableSampler).
        seed_sample(results.get('sample_key'))
        path = results.get('img_path')
        if path is None and isinstance(results.get('img'), np.ndarray):
            # An image already in memory (inference on arrays, mmpretrain's inferencer).
            image = self._from_array(results['img'], results)
            results['img'] = image
            results['img_shape'] = image.shape[:2]
            return results
        if path is None:
            raise ExplainedValueError(f'{type(self).__name__}: the sample has neither img_path '
                                      'nor an img array; give a file path or a HxWx3 image')
        try:
            image = self.load(path, results)
        except (UnreadableImageError, OSError) as exc:
            reason = str(exc) if isinstance(exc, UnreadableImageError) else f'{path}: {exc}'
            record_unreadable(self.unreadable_log, path, reason)
            if self.on_error == 'skip':
                return None
            image = np.zeros(self.placeholder_shape + (3, ), np.uint8)
        if self.to_float32:
            image = image.astype(np.float32)
        results['img'] = image
        results['img_shape'] = image.shape[:2]
        results.setdefault('ori_shape', image.shape[:2])
        return results

    def load(self, path: str, results: dict) -> np.ndarray:
        """Read, check and decode one file as this loader does (``tools/misc/verify_dataset``
        calls it too, so a file it lists is one this loader refuses).

        Raises:
            UnreadableImageError: the reason, naming the file; OSError: it cannot be read.
        """
        if path in self._over_time:
            raise DecodeLimitError(self._over_time[path])
        data = self._read(path)
        check_jpeg_scans(data, path, self.max_scans)
        try:
            with DecodeClock(path, self.max_decode_seconds):
                return self._decode(data, path, results)
        except DecodeLimitError as exc:
            self._over_time[path] = str(exc)
            raise

    def _read(self, path: str) -> bytes:
        if self.backend_args is None and '://' not in path:  # a local file: checked first
            return read_image_file(path, self.max_pixels)
        return fileio.get(path, backend_args=self.backend_args)

    def _decode(self, data: bytes, path: str, results: dict) -> np.ndarray:
        """The whole image; the cropping loaders decode only what their crop needs."""
        return decode_image(data, path, max_pixels=self.max_pixels)

    def _from_array(self, image: np.ndarray, results: dict) -> np.ndarray:
        """An already decoded BGR image, as this loader would have returned it from a file."""
        image = bgr_image(image)
        results.setdefault('ori_shape', image.shape[:2])
        return image.astype(np.float32) if self.to_float32 else image

    def __repr__(self) -> str:
        return f'{type(self).__name__}(on_error={self.on_error!r})'
