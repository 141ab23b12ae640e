"""decode_image: ImageNet's oddities load as correct colour images; bad files say why."""
import os

import numpy as np
import pytest

from resnest_mm.datasets import UnreadableImageError, decode_image
from tests.helpers.odd_images import write_odd_images, write_unreadable_images


@pytest.fixture(scope='module')
def odd(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('odd'))
    return folder, write_odd_images(folder)


@pytest.mark.parametrize('name', ['cmyk.JPEG', 'gray.JPEG', 'png_named.JPEG', 'rgba.png',
                                  'gray16.png', 'rotated.JPEG'])
def test_oddities_decode_to_the_right_rgb(odd, name):
    folder, expected = odd
    with open(os.path.join(folder, name), 'rb') as f:
        bgr = decode_image(f.read(), name)
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    want = expected[name]
    assert bgr.shape[:2] == want.shape[:2]
    diff = np.abs(bgr[..., ::-1].astype(int) - want.astype(int))
    assert diff.mean() < 3 and diff.max() < 40, (name, diff.mean(), diff.max())


def test_unreadable_files_raise_with_path_and_reason(tmp_path):
    reasons = write_unreadable_images(str(tmp_path))
    for name, reason in reasons.items():
        with open(tmp_path / name, 'rb') as f:
            with pytest.raises(UnreadableImageError, match=f'{name}: {reason}'):
                decode_image(f.read(), name)
