"""FastColorJitter: each adjustment is Pillow's ImageEnhance (torchvision's, the seed's) within one
grey level; factors and order are drawn as mmpretrain's ColorJitter draws them."""
import numpy as np
import pytest
import torchvision.transforms.functional as TF
from PIL import Image, ImageEnhance

from resnest_mm.datasets.transforms import FastColorJitter


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    bgr = np.stack([xx * 4, yy * 5, 255 - xx * 3], 2) + rng.integers(-20, 20, (48, 64, 3))
    return bgr.clip(0, 255).astype(np.uint8)


def _only(index: int, factor: float) -> FastColorJitter:
    jitter = FastColorJitter(0.4, 0.4, 0.4, 0.4)
    jitter._rand_params = lambda: (np.array([index]), [factor if i == index else None
                                                       for i in range(4)])
    return jitter


@pytest.mark.parametrize('index,enhancer', [(0, ImageEnhance.Brightness),
                                            (1, ImageEnhance.Contrast),
                                            (2, ImageEnhance.Color)])
@pytest.mark.parametrize('factor', [0.6, 1.0, 1.4])
def test_each_adjustment_is_pillows(index, enhancer, factor):
    bgr = _image()
    ours = _only(index, factor)(dict(img=bgr.copy()))['img']
    want = np.asarray(enhancer(Image.fromarray(bgr[..., ::-1])).enhance(factor))
    assert ours.dtype == np.uint8
    assert np.abs(ours[..., ::-1].astype(int) - want).max() <= 1


@pytest.mark.parametrize('factor', [-0.3, 0.1, 0.45])
def test_hue_is_torchvisions(factor):
    bgr = _image()
    ours = _only(3, factor)(dict(img=bgr.copy()))['img'][..., ::-1].astype(int)
    want = np.asarray(TF.adjust_hue(Image.fromarray(bgr[..., ::-1]), factor)).astype(int)
    assert np.abs(ours - want).max() <= 1


def test_factors_and_order_are_drawn_like_mmpretrains():
    from mmpretrain.datasets.transforms import ColorJitter
    args = (0.4, 0.3, (0.5, 0.9), 0.1)
    ours, theirs = FastColorJitter(*args), ColorJitter(*args)
    for seed in range(5):
        np.random.seed(seed)
        order, factors = ours._rand_params()
        np.random.seed(seed)
        their_order, *their_factors = theirs._rand_params()
        assert order.tolist() == their_order.tolist()
        assert np.allclose(factors, their_factors)
    assert 0.6 <= factors[0] <= 1.4 and 0.5 <= factors[2] <= 0.9 and -0.1 <= factors[3] <= 0.1


def test_jitter_changes_images_and_nothing_else():
    np.random.seed(0)
    results = FastColorJitter(0.4, 0.4, 0.4)(dict(img=_image(), gt_label=3))
    assert results['gt_label'] == 3 and results['img'].shape == (48, 64, 3)
    assert not np.array_equal(results['img'], _image())
    assert np.array_equal(FastColorJitter()(dict(img=_image()))['img'], _image())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='brightness=-0.1'):
        FastColorJitter(brightness=-0.1)
    with pytest.raises(ValueError, match='hue range'):
        FastColorJitter(hue=0.7)
    with pytest.raises(ValueError, match='BGR uint8 image, got float32'):
        FastColorJitter(0.4)(dict(img=_image().astype(np.float32)))
