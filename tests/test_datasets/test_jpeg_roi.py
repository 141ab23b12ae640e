"""The JPEG region decoder: OpenCV's pixels, cropped; the crops of the loaders unchanged by it;
files it does not take go the ordinary way (and bad ones stay unreadable)."""
import io
import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from resnest_mm.datasets import jpeg_roi
from resnest_mm.datasets.transforms import DecodeCenterCrop, DecodeRandomResizedCrop
from tests.helpers.odd_images import write_odd_images

pytestmark = pytest.mark.skipif(not jpeg_roi.available(),
                                reason='the region decoder is not built (make jpeg-roi)')
_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
          8: cv2.IMREAD_REDUCED_COLOR_8}


def _jpeg(width: int, height: int, subsampling: int, mode: str = 'RGB', seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(xx / 7.), 128 + 100 * np.cos(yy / 5.),
                    (xx * yy) % 255], 2) + rng.normal(0, 20, (height, width, 1))
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, 'JPEG', quality=90, subsampling=subsampling)
    return buffer.getvalue()


@pytest.mark.parametrize('subsampling,mode', [(2, 'RGB'), (1, 'RGB'), (0, 'RGB'), (0, 'L')])
def test_regions_are_opencvs_pixels(subsampling, mode):
    data = _jpeg(203, 157, subsampling, mode)
    rng = np.random.default_rng(1)
    for reduce in (1, 2, 4, 8):
        full = cv2.imdecode(np.frombuffer(data, np.uint8), _FLAGS[reduce])
        height, width = full.shape[:2]
        boxes = [(0, 0, width, height), (width - 1, height - 1, width, height)]
        for _ in range(12):
            x1, y1 = int(rng.integers(0, width)), int(rng.integers(0, height))
            boxes.append((x1, y1, int(rng.integers(x1 + 1, width + 1)),
                          int(rng.integers(y1 + 1, height + 1))))
        for x1, y1, x2, y2 in boxes:
            region = jpeg_roi.decode_region(data, (157, 203), reduce, (x1, y1, x2, y2))
            assert region is not None and region.flags['C_CONTIGUOUS']
            np.testing.assert_array_equal(region, full[y1:y2, x1:x2],
                                          err_msg=f'{reduce} {(x1, y1, x2, y2)}')


def test_what_it_does_not_take_is_left_to_the_ordinary_decoder(tmp_path):
    write_odd_images(str(tmp_path))
    cmyk = (tmp_path / 'cmyk.JPEG').read_bytes()
    height, width = cv2.imdecode(np.frombuffer(cmyk, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    assert jpeg_roi.decode_region(cmyk, (height, width), 1, (0, 0, 4, 4)) is None
    data = _jpeg(64, 48, 2)
    assert jpeg_roi.decode_region(data, (48, 65), 1, (0, 0, 4, 4)) is None  # not its size
    scan = data.index(b'\xff\xda')  # damage the entropy-coded data: libjpeg warns, we decline
    broken = data[:scan + 20] + b'\xff\xd0' * 40 + data[scan + 100:]
    assert jpeg_roi.decode_region(broken, (48, 64), 1, (0, 0, 64, 48)) is None
    assert jpeg_roi.decode_region(b'\xff\xd8\xff\xd9', (48, 64), 1, (0, 0, 4, 4)) is None


@pytest.mark.parametrize('transform', [
    dict(type=DecodeRandomResizedCrop, scale=64, crop_ratio_range=(0.1, 1.0)),
    dict(type=DecodeCenterCrop, crop_size=64, crop_padding=8),
    dict(type=DecodeCenterCrop, crop_size=64, crop_padding=8, dct_reduce=True)])
def test_the_loaders_crop_the_same_pixels_with_it(tmp_path, transform):
    kwargs = dict(transform)
    kind = kwargs.pop('type')
    with_region, without = kind(**kwargs), kind(region_decode=False, **kwargs)
    for index, (size, subsampling) in enumerate([((500, 375), 2), ((375, 500), 0),
                                                 ((1200, 900), 1)]):
        path = tmp_path / f'{index}.JPEG'
        path.write_bytes(_jpeg(*size, subsampling, seed=index))
        for seed in range(6):
            np.random.seed(seed)
            ours = with_region(dict(img_path=str(path)))
            np.random.seed(seed)
            theirs = without(dict(img_path=str(path)))
            np.testing.assert_array_equal(ours['crop_bbox'], theirs['crop_bbox'])
            assert ours['decode_reduce'] == theirs['decode_reduce']
            np.testing.assert_array_equal(ours['img'], theirs['img'])


def test_without_the_library_crops_decode_whole_images_and_say_so_once(tmp_path, monkeypatch):
    from mmengine.logging import MMLogger
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    monkeypatch.setattr(jpeg_roi, 'LIBRARY', str(tmp_path / 'missing.so'))
    monkeypatch.setattr(jpeg_roi, '_loaded', False)
    monkeypatch.setattr(jpeg_roi, '_decoder', None)
    path = tmp_path / 'a.JPEG'
    path.write_bytes(_jpeg(300, 200, 2))
    crop = DecodeCenterCrop(crop_size=64, crop_padding=8)
    outs = [crop(dict(img_path=str(path)))['img'] for _ in range(3)]
    assert not jpeg_roi.available()
    logger.removeHandler(handler)
    assert sum('JPEG region decoding is off' in line for line in said) == 1, said
    monkeypatch.setattr(jpeg_roi, '_loaded', False)  # built again: the same pixels
    monkeypatch.setattr(jpeg_roi, 'LIBRARY', jpeg_roi.os.path.join(
        jpeg_roi.os.path.dirname(jpeg_roi.__file__), '_jpeg_roi.so'))
    np.testing.assert_array_equal(crop(dict(img_path=str(path)))['img'], outs[0])
