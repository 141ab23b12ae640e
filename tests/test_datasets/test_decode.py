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


def test_lying_headers_are_unreadable_with_the_reason_before_any_decoding():
    """Bombs of every format are refused by policy naming max_pixels; broken or empty headers
    name what is wrong; nothing escapes as cv2.error (the 40000 x 40000 JPEG did) or decodes
    (the 30000 x 30000 one did, to 2.7 GB)."""
    import time

    from resnest_mm.datasets import ImageTooLargeError
    from tests.helpers.hostile_images import hostile_images
    for name, data in hostile_images().items():
        start = time.perf_counter()
        error = ImageTooLargeError if name.endswith(('_bomb.JPEG', '_bomb.png', '_bomb.bmp',
                                                     '_bomb.ppm', '_bomb.tif')) \
            else UnreadableImageError
        with pytest.raises(error, match=f'^{name}: ') as caught:
            decode_image(data, name)
        if error is ImageTooLargeError:
            assert 'max_pixels' in str(caught.value) or "more pixels than Pillow" in \
                str(caught.value), caught.value
        assert time.perf_counter() - start < 0.5, name
    reasons = {name: str(pytest.raises(UnreadableImageError, decode_image, data, name).value)
               for name, data in hostile_images().items()}
    assert 'declares an empty image (16 x 0 pixels)' in reasons['jpeg_zero_height.JPEG']
    assert 'broken PNG: chunk IDAT declares 2,147,418,112 bytes, only 24 follow' in \
        reasons['png_corrupt_idat_length.png']
    assert 'declares 8 x 8 pixels in tiles of 268,435,456 pixels' in \
        reasons['tiff_huge_tile_bomb.tif']


def test_max_pixels_is_the_limit_and_the_file_size_is_checked_before_reading(tmp_path):
    from resnest_mm.datasets import ImageTooLargeError
    from resnest_mm.datasets.decode_limits import read_image_file
    data = _exif_jpeg(1, 'II')  # 30 x 50
    assert decode_image(data, max_pixels=1500).shape == (30, 50, 3)
    with pytest.raises(ImageTooLargeError, match='50 x 30 = 1,500 pixels, more than '
                                                 'max_pixels=1,499'):
        decode_image(data, 'x.JPEG', max_pixels=1499)
    path = tmp_path / 'x.JPEG'
    path.write_bytes(data + bytes(2000))  # trailing zeros: still a complete JPEG
    assert read_image_file(str(path), max_pixels=1500)
    with pytest.raises(ImageTooLargeError, match=r'the file is [\d,]+ bytes, more than an image '
                                                 r'of max_pixels=100 needs'):
        read_image_file(str(path), max_pixels=100)


def test_a_decoder_assertion_becomes_an_unreadable_image():
    """With max_pixels raised past OpenCV's own limit (2^30), OpenCV's assertion (cv2.error,
    which killed data-loader workers) and Pillow's refusal both end as our error."""
    from tests.helpers.hostile_images import jpeg_declaring
    with pytest.raises(UnreadableImageError, match='^big.JPEG: declares more pixels than '
                                                   'Pillow opens'):
        decode_image(jpeg_declaring(40000, 40000), 'big.JPEG', max_pixels=2 ** 31)


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'BMP', 'PPM', 'TIFF', 'WEBP', 'GIF'])
def test_damaged_files_decode_or_are_unreadable_never_anything_else(fmt):
    """Every byte of the first 64 set to 0xFF, 0x00 or 0x7F in turn, and the file cut at 40
    places: each result is an image within max_pixels or UnreadableImageError."""
    import io

    from PIL import Image
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(buf, format=fmt)
    data = buf.getvalue()
    damaged = [data[:pos] + bytes([value]) + data[pos + 1:] for pos in range(min(64, len(data)))
               for value in (0xFF, 0x00, 0x7F)]
    damaged += [data[:cut] for cut in np.linspace(1, len(data) - 1, 40).astype(int)]
    for i, bad in enumerate(damaged):
        try:
            image = decode_image(bad, f'{fmt}-{i}', max_pixels=100_000)
        except UnreadableImageError:
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= 100_000, (i, image.shape)


MEASURE_BOMBS = '''
import os, resource, sys, time
from resnest_mm.datasets.transforms import (DecodeCenterCrop, DecodeRandomResizedCrop,
                                            LoadImageRobust)
loaders = [LoadImageRobust(), LoadImageRobust(on_error='placeholder'),
           DecodeRandomResizedCrop(scale=32), DecodeCenterCrop(crop_size=32)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
for name in sorted(os.listdir(sys.argv[1])):
    for loader in loaders:
        out = loader.transform({'img_path': os.path.join(sys.argv[1], name)})
        assert out is None or out['img'].max() == 0, name  # skipped, or the black stand-in
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print('GROWN_KB', grown, 'SECONDS', time.perf_counter() - start)
'''


@pytest.mark.slow
def test_hostile_files_cost_every_loading_transform_no_memory(tmp_path, repo_root):
    """In a fresh process, so the peak is that of these files: every loading transform on every
    hostile file grows the peak RSS by under 64 MB (the corrupt PNG chunk cost 2 GB, the
    30000 x 30000 JPEG 5 GB and 15 s)."""
    import subprocess
    import sys

    from tests.helpers.hostile_images import write_hostile_images
    write_hostile_images(str(tmp_path))
    result = subprocess.run([sys.executable, '-c', MEASURE_BOMBS, str(tmp_path)], cwd=repo_root,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    words = result.stdout.split()
    grown_kb, seconds = int(words[words.index('GROWN_KB') + 1]), float(words[-1])
    print(f'peak RSS grew by {grown_kb / 1024:.1f} MB in {seconds:.2f} s')
    assert grown_kb < 64 * 1024, f'peak RSS grew by {grown_kb / 1024:.0f} MB'
    assert seconds < 5, seconds
