"""interleaved / planar: the same pixels in the layout the next step wants, flipped views too."""
import numpy as np
import pytest

from resnest_mm.datasets.image_layout import interleaved, planar
from resnest_mm.datasets.transforms import FastColorJitter


def _image(shape=(21, 34, 3)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize('view', [lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1],
                                  lambda a: a[..., ::-1], lambda a: a[2:9, 3:20],
                                  lambda a: np.flip(a[2:9, 3:20], 1)])
def test_interleaved_is_a_contiguous_copy_of_any_view(view):
    image = _image()
    out = interleaved(view(image))
    assert out.flags['C_CONTIGUOUS'] and np.array_equal(out, view(image))
    assert not np.shares_memory(out, image)
    assert interleaved(image) is image  # nothing to do


def test_planar_holds_chw_planes_behind_an_hwc_view():
    image = _image()
    out = planar(image[:, ::-1])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, image[:, ::-1])
    assert out.transpose(2, 0, 1).flags['C_CONTIGUOUS']
    offsets = np.array([-3.25, 0.5, 7.], np.float32)
    lit = planar(image, offsets)
    assert lit.dtype == np.float32 and lit.transpose(2, 0, 1).flags['C_CONTIGUOUS']
    assert np.array_equal(lit, image.astype(np.float32) + offsets)


def test_jitter_of_a_flipped_view_is_the_jitter_of_its_copy():
    """RandomFlip hands FastColorJitter an np.flip view; the result must not depend on it."""
    image = _image((40, 60, 3))
    jitter = FastColorJitter(0.4, 0.4, 0.4)
    for seed in range(4):
        np.random.seed(seed)
        ours = jitter(dict(img=np.flip(image, 1)))['img']
        np.random.seed(seed)
        want = jitter(dict(img=np.flip(image, 1).copy()))['img']
        assert ours.flags['C_CONTIGUOUS'] and np.array_equal(ours, want)
