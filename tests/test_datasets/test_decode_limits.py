"""Decoding bounded in work: the scans of a JPEG are counted from its markers and capped, the
CPU time of each decode is measured and capped, and only regular files are read; every refusal
is recorded like any unreadable file, by every loading transform."""
import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from resnest_mm.datasets.decode_limits import DecodeLimitError, read_image_file
from resnest_mm.datasets.image_header import count_jpeg_scans
from resnest_mm.datasets.transforms import LoadImageRobust
from resnest_mm.datasets.unreadable_log import UnreadableLog
from tests.helpers.hostile_images import png_inflating, progressive_jpeg
from tests.helpers.timeouts import ends_within
from tests.test_datasets.test_transforms.test_load_image import LOADERS


def _records(folder):
    return ''.join((folder / name).read_text() for name in sorted(os.listdir(folder)))


def _jpeg(**kwargs):
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format='JPEG', **kwargs)
    return buf.getvalue()


def test_scans_are_counted_as_libjpeg_reads_them():
    assert count_jpeg_scans(_jpeg(quality=90)) == 1  # baseline, interleaved
    assert count_jpeg_scans(_jpeg(quality=90, progressive=True)) == 10  # libjpeg's progression
    # an EXIF thumbnail is a whole JPEG inside APP1: its scan is not the image's
    thumb = _jpeg(quality=50)
    exif = Image.Exif()
    exif[0x010E] = 'x'
    data = _jpeg(quality=90, exif=exif.tobytes())
    app1 = b'Exif\x00\x00' + thumb  # stands in for a thumbnail IFD holding a JPEG
    with_thumb = data[:2] + b'\xff\xe1' + (len(app1) + 2).to_bytes(2, 'big') + app1 + data[2:]
    assert count_jpeg_scans(with_thumb) == 1
    assert count_jpeg_scans(progressive_jpeg(64, 64, 210)) == 210
    assert count_jpeg_scans(progressive_jpeg(64, 64, 210)[:-3000]) < 210  # cut short: counted


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_a_jpeg_of_too_many_scans_is_refused_before_decoding(name, tmp_path, monkeypatch):
    """1,010 scans over 2000 x 2000 pixels (38 KB) decode in over a second of CPU; refused from
    the markers in milliseconds."""
    path = tmp_path / 'scans.JPEG'
    path.write_bytes(progressive_jpeg(2000, 2000, 1010))
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    loader = LOADERS[name]()
    start = time.thread_time()
    out = loader.transform({'img_path': str(path)})
    assert time.thread_time() - start < 0.5
    assert out is None or not np.any(out['img'])
    assert _records(tmp_path / 'records') == (
        f'{path}\t{path}: a JPEG of 1,010 scans, more than max_scans=100 (photos have about '
        '10; each scan is a pass over the whole image); not decoded. If such images are real, '
        'raise max_scans on the loading transform\n')
    if name == 'LoadImageRobust':  # within the limit (the loader's argument) it decodes
        assert LOADERS[name](max_scans=1010, max_decode_seconds=None).transform(
            {'img_path': str(path)}) is not None


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_a_decode_over_its_cpu_time_is_refused_and_not_repeated(name, tmp_path, monkeypatch):
    path = tmp_path / 'slow.JPEG'
    path.write_bytes(progressive_jpeg(1500, 1500, 400))  # about 0.3 s of CPU
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    loader = LOADERS[name](max_scans=400, max_decode_seconds=0.02)
    out = loader.transform({'img_path': str(path)})
    assert out is None or not np.any(out['img'])
    record = _records(tmp_path / 'records')
    assert record.startswith(f'{path}\t{path}: decoding took ') and record.endswith(
        ' s of CPU, more than max_decode_seconds=0.02; the image is not used. If such images '
        'are real, raise max_decode_seconds on the loading transform\n')
    start = time.thread_time()  # drawn again: refused without decoding
    with pytest.raises(DecodeLimitError, match='decoding took'):
        loader.load(str(path), {})
    assert time.thread_time() - start < 0.02


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_a_fifo_or_a_device_is_not_read(name, tmp_path, monkeypatch):
    """open() on a FIFO waits for a writer for ever; a device is not an image."""
    os.mkfifo(tmp_path / 'fifo.JPEG')
    os.symlink('/dev/null', tmp_path / 'null.JPEG')
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    with ends_within(5):
        for file in ('fifo.JPEG', 'null.JPEG'):
            out = LOADERS[name]().transform({'img_path': str(tmp_path / file)})
            assert out is None or not np.any(out['img'])
    assert _records(tmp_path / 'records') == (
        f'{tmp_path}/fifo.JPEG\t{tmp_path}/fifo.JPEG: a FIFO, not a regular file; not read\n'
        f'{tmp_path}/null.JPEG\t{tmp_path}/null.JPEG: a device, not a regular file; not read\n')


def test_read_image_file_reads_a_regular_file(tmp_path):
    (tmp_path / 'a.JPEG').write_bytes(b'\xff\xd8data')
    assert read_image_file(str(tmp_path / 'a.JPEG')) == b'\xff\xd8data'
    with pytest.raises(DecodeLimitError, match='a folder, not a regular file'):
        read_image_file(str(tmp_path))


def test_names_with_control_characters_are_one_record_each(tmp_path, monkeypatch):
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    for name in ('a\nb.JPEG', 'tab\tx.JPEG', '\x1b[2Jclear.JPEG'):
        (tmp_path / name).write_bytes(b'not an image')
        assert LOADERS['LoadImageRobust']().transform({'img_path': str(tmp_path / name)}) is None
    lines = _records(tmp_path / 'records').split('\n')[:-1]
    assert [line.split('\t')[0] for line in lines] == [
        f'{tmp_path}/a\\nb.JPEG', f'{tmp_path}/tab\\tx.JPEG', f'{tmp_path}/\\x1b[2Jclear.JPEG']
    assert all(line.count('\t') == 1 and '\x1b' not in line for line in lines)


def test_scans_after_a_complete_baseline_frame_cost_nothing_and_are_not_counted(tmp_path):
    """libjpeg ends an ordinary baseline image with its first scan; the count, which skips the
    entropy-coded data of every other JPEG, stops there too (microseconds a file)."""
    from resnest_mm.datasets.transforms import LoadImageRobust
    buf = io.BytesIO()
    Image.fromarray(np.full((2000, 2000, 3), 128, np.uint8)).save(buf, format='JPEG')
    plain = buf.getvalue()
    scan = plain[plain.rfind(b'\xff\xda'):-2]
    repeated = plain[:-2] + scan * 1000 + b'\xff\xd9'
    assert count_jpeg_scans(repeated) == 1
    times = []
    for name, data in (('plain.JPEG', plain), ('repeated.JPEG', repeated)):
        (tmp_path / name).write_bytes(data)
        start = time.thread_time()
        assert LoadImageRobust().load(str(tmp_path / name), {}).shape == (2000, 2000, 3)
        times.append(time.thread_time() - start)
    assert times[1] < 3 * times[0] + 0.05, times


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_a_png_inflating_far_beyond_its_pixels_is_refused_before_decoding(name, tmp_path,
                                                                         monkeypatch):
    """A 16 x 16 PNG whose compressed data goes on for 400 MB of zeros (400 KB): before,
    libpng inflated all of it (about a second of CPU per draw, 10 s for a 4 MB file, under
    max_decode_seconds) and returned the 16 x 16 image; refused after inflating what the
    pixels need."""
    path = tmp_path / 'inflating.png'
    path.write_bytes(png_inflating(16, 16, 400 << 20))
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    start = time.thread_time()
    out = LOADERS[name]().transform({'img_path': str(path)})
    assert time.thread_time() - start < 0.1
    assert out is None or not np.any(out['img'])
    assert _records(tmp_path / 'records') == (
        f'{path}\t{path}: PNG data inflates to more than the 1,050,144 bytes its 16 x 16 pixels '
        'can need (a decompression bomb); not decoded\n')

    # real PNGs of every sample layout, and one with 1 MB of data past its rows, still decode
    from resnest_mm.datasets.decode import decode_image
    pixels = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 4),
                                                               dtype=np.uint8), 'RGBA')
    for mode in ('1', 'L', 'LA', 'P', 'RGB', 'RGBA', 'I;16'):
        buf = io.BytesIO()
        pixels.convert(mode if mode != 'I;16' else 'I').convert(mode).save(
            buf, format='PNG', compress_level=0)
        assert decode_image(buf.getvalue(), f'{mode}.png').shape == (37, 53, 3), mode
    assert decode_image(png_inflating(53, 37, 1 << 20), 'extra.png').shape == (37, 53, 3)


def test_a_png_of_many_chunks_besides_its_pixels_is_refused_from_its_header(tmp_path, capfd):
    """20,000 empty ``tEXt`` chunks around a 1 x 1 image: libpng printed a warning line to
    stderr for each (a log flood of 20,000 lines per draw; 1.9 s of CPU and a million lines
    for a 12 MB file), and the pixel was decoded. Real PNGs have a handful of such chunks
    (libpng caches 1,000 at most)."""
    import struct
    import zlib

    from resnest_mm.datasets.decode import UnreadableImageError, decode_image
    from tests.helpers.hostile_images import _chunk
    ihdr = struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)
    png = (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'tEXt', b'') * 20_000
           + _chunk(b'IDAT', zlib.compress(b'\x00' * 4)) + _chunk(b'IEND', b''))
    capfd.readouterr()
    with pytest.raises(UnreadableImageError, match=r'^many\.png: broken PNG: 20,001 chunks '
                                                   r'besides its image data, more than 1,000 '
                                                   r'\(a real PNG has a handful\)$'):
        decode_image(png, 'many.png')
    assert capfd.readouterr().err.count('\n') < 10
