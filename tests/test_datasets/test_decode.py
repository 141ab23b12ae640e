"""decode_image: ImageNet's oddities load as correct colour images; bad files say why."""
import os

import numpy as np
import pytest

from resnest_mm.datasets import UnreadableImageError, decode_image
from resnest_mm.datasets.decode import jpeg_size
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


def _exif_jpeg(orientation: int, byte_order: str) -> bytes:
    """A 30x50 JPEG whose EXIF (written by hand, in either byte order) holds ``orientation``."""
    import io
    import struct

    from PIL import Image
    fmt = '<' if byte_order == 'II' else '>'
    entry = struct.pack(fmt + 'HHIHH', 0x0112, 3, 1, orientation, 0)
    tiff = byte_order.encode() + struct.pack(fmt + 'HI', 42, 8) + struct.pack(fmt + 'H', 1) \
        + entry + struct.pack(fmt + 'I', 0)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(buf, format='JPEG',
                                                          exif=b'Exif\x00\x00' + tiff)
    return buf.getvalue()


@pytest.mark.parametrize('byte_order', ['II', 'MM'])
@pytest.mark.parametrize('orientation', range(1, 9))
def test_jpeg_size_reads_the_displayed_size_from_the_headers(orientation, byte_order):
    data = _exif_jpeg(orientation, byte_order)
    want = (50, 30) if orientation >= 5 else (30, 50)
    assert jpeg_size(data) == want
    assert decode_image(data).shape[:2] == want  # what the decoder yields agrees


def test_jpeg_size_is_none_for_what_it_cannot_vouch_for(odd, tmp_path):
    folder, _ = odd
    for name in ('png_named.JPEG', 'rgba.png', 'gray16.png'):
        with open(os.path.join(folder, name), 'rb') as f:
            assert jpeg_size(f.read()) is None, name
    write_unreadable_images(str(tmp_path))
    for name in ('truncated.JPEG', 'empty.JPEG', 'text.JPEG'):
        assert jpeg_size((tmp_path / name).read_bytes()) is None, name
    for name in ('cmyk.JPEG', 'gray.JPEG'):
        with open(os.path.join(folder, name), 'rb') as f:
            assert jpeg_size(f.read()) == (32, 48), name


@pytest.mark.parametrize('reduce', [2, 4, 8])
def test_reduced_decode_is_the_image_at_a_fraction_of_the_size(reduce):
    import io

    from PIL import Image
    yy, xx = np.mgrid[0:240, 0:320]
    rgb = np.stack([xx * 255 // 319, yy * 255 // 239, (xx + yy) * 255 // 558], 2)
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format='JPEG', quality=95)
    full = decode_image(buf.getvalue())
    small = decode_image(buf.getvalue(), reduce=reduce)
    assert small.shape == (240 // reduce, 320 // reduce, 3)
    shrunk = np.asarray(Image.fromarray(full).resize(small.shape[1::-1], Image.BOX))
    assert np.abs(small.astype(int) - shrunk).mean() < 2
    with pytest.raises(ValueError, match='reduce=3'):
        decode_image(buf.getvalue(), reduce=3)
