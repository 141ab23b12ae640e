"""FastLighting: mmcv's PCA lighting noise, as float32, never wrapped round."""
import mmcv
import numpy as np
import pytest
from mmpretrain.datasets.transforms import Lighting

from resnest_mm.datasets.transforms import FastLighting

EIGVAL = [55.4625, 4.7940, 1.1475]
EIGVEC = [[-0.5836, -0.6948, 0.4203], [-0.5808, -0.0045, -0.8140], [-0.5675, 0.7192, 0.4009]]


@pytest.mark.parametrize('to_rgb', [False, True])
def test_same_noise_as_mmcv(to_rgb):
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.random.seed(7)
    ours = FastLighting(EIGVAL, EIGVEC, alphastd=0.1, to_rgb=to_rgb)(dict(img=img))['img']
    np.random.seed(7)
    want = mmcv.adjust_lighting(img, np.array(EIGVAL), np.array(EIGVEC), 0.1, to_rgb=to_rgb)
    assert ours.dtype == np.float32 and ours.shape == (20, 30, 3)
    assert np.abs(ours - want).max() < 1e-3


def test_a_flipped_image_is_lit_as_its_copy_and_packed_without_a_copy():
    """RandomFlip hands over a view; the output's planes are the tensor PackInputs makes."""
    from mmpretrain.datasets.transforms import PackInputs
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    lighting = FastLighting(EIGVAL, EIGVEC, alphastd=0.1)
    np.random.seed(3)
    ours = lighting(dict(img=np.flip(img, 1)))['img']
    np.random.seed(3)
    want = lighting(dict(img=np.flip(img, 1).copy()))['img']
    assert np.array_equal(ours, want)
    np.random.seed(3)
    ours = lighting(dict(img=img))['img']
    packed = PackInputs()(dict(img=ours))['inputs']
    assert packed.shape == (3, 20, 30) and np.shares_memory(packed.numpy(), ours)
    assert np.array_equal(packed.numpy(), ours.transpose(2, 0, 1))


def test_extremes_are_not_wrapped_round():
    """mmpretrain 1.2's Lighting casts back to uint8: black pixels pushed below 0 turn white."""
    img = np.zeros((4, 4, 3), np.uint8)
    for seed in range(20):
        np.random.seed(seed)
        ours = FastLighting(EIGVAL, EIGVEC, alphastd=0.1)(dict(img=img))['img']
        np.random.seed(seed)
        theirs = Lighting(EIGVAL, EIGVEC, alphastd=0.1, to_rgb=False)(dict(img=img))['img']
        if ours.min() < -1:
            break
    assert ours.min() < -1 and np.abs(ours).max() < 50  # unclipped, as the seed's tensors
    assert theirs.max() > 200  # the wrap this transform exists to avoid


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r'3 x len\(eigval\)'):
        FastLighting([1., 2.], EIGVEC)
