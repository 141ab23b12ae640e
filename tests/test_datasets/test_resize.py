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


def _torchvision_version():
    import torchvision
    return tuple(int(part) for part in torchvision.__version__.split('.')[:2])


@pytest.mark.skipif(_torchvision_version() < (0, 17), reason='torchvision 0.16 resizes uint8 '
                    'in float on AVX-512 CPUs (it looks for "AVX2" in the capability name); '
                    'ours takes the uint8 kernel there too, within one grey level of Pillow')
@pytest.mark.parametrize('shape,size', [((330, 331), (224, 224)), ((90, 150), (224, 224)),
                                        ((31, 17), (8, 9)), ((500, 20), (7, 300))])
def test_is_torchvisions_resize_bit_for_bit(shape, size):
    """The direct kernel call (on AVX2/AVX-512 CPUs) gives torchvision's own pixels."""
    import torch
    from torchvision.transforms.v2 import functional as tv_functional
    image = np.random.default_rng(1).integers(0, 256, shape + (3, ), dtype=np.uint8)
    theirs = tv_functional.resize(torch.from_numpy(image).permute(2, 0, 1), list(size),
                                  antialias=True).permute(1, 2, 0).numpy()
    assert np.array_equal(resize_hwc(image, size), theirs)
