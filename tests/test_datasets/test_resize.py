"""resize_hwc: torchvision's antialiased bilinear resize on HWC arrays, Pillow's filter within
one grey level."""
import numpy as np
import pytest
from PIL import Image

from resnest_mm.datasets.transforms.decode_crop import resize_hwc


@pytest.mark.parametrize('shape,size', [((300, 300), (224, 224)), ((90, 150), (224, 224)),
                                        ((31, 17), (8, 9)), ((40, 40), (40, 40))])
def test_matches_pillow(shape, size):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, shape + (3, ), dtype=np.uint8)
    ours = resize_hwc(image[:, ::-1], size)  # strided input is fine
    pillow = np.asarray(Image.fromarray(np.ascontiguousarray(image[:, ::-1])).resize(
        size[::-1], Image.BILINEAR))
    assert ours.shape == size + (3, ) and ours.dtype == np.uint8 and ours.flags['C_CONTIGUOUS']
    assert np.abs(ours.astype(int) - pillow).max() <= 1
