"""PackForDevice: PackInputs' samples, with each image's HWC memory packed as it is."""
import numpy as np
import pytest
import torch
from mmpretrain.datasets.transforms.formatting import PackInputs

from resnest_mm.datasets.image_layout import planar
from resnest_mm.datasets.transforms import PackForDevice

META = ('img_path', 'flip')


def _both(image):
    results = dict(img=image, gt_label=3, img_path='a/0.JPEG', flip=True)
    return (PackForDevice(meta_keys=META)(dict(results)),
            PackInputs(meta_keys=META)(dict(results)))


def test_a_contiguous_image_is_packed_without_a_copy():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ours, theirs = _both(image)
    assert ours['inputs'].data_ptr() == image.ctypes.data  # the worker's pixels, not a copy
    assert ours['inputs'].stride() == (1, 21, 3)
    assert torch.equal(ours['inputs'], theirs['inputs'])
    assert ours['data_samples'].gt_label.tolist() == [3]
    assert ours['data_samples'].metainfo == theirs['data_samples'].metainfo


@pytest.mark.parametrize('view', ['flipped', 'planar', 'gray', 'one channel flipped', 'list'])
def test_other_layouts_give_packinputs_values(view):
    image = np.random.default_rng(1).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    image = {'flipped': image[:, ::-1], 'planar': planar(image), 'gray': image[..., 0],
             'one channel flipped': np.ascontiguousarray(image[..., :1])[:, ::-1],
             'list': [image, image[::-1]]}[view]
    ours, theirs = _both(image)
    if view == 'list':
        assert all(torch.equal(a, b) for a, b in zip(ours['inputs'], theirs['inputs']))
    else:
        assert torch.equal(ours['inputs'], theirs['inputs'])
    if view == 'planar':  # planes already: PackInputs' own no-copy case
        assert ours['inputs'].is_contiguous() and ours['inputs'].data_ptr() == image.ctypes.data
