"""Every loading transform: max_pixels is its argument, and a file over it is recorded and then
skipped (training) or scored as the black stand-in (evaluation), like a truncated file."""
import os

import numpy as np
import pytest

from resnest_mm.datasets.transforms import (
    DecodeCenterCrop,
    DecodeRandomResizedCrop,
    LoadImageRobust,
)
from resnest_mm.datasets.unreadable_log import UnreadableLog
from tests.helpers.hostile_images import jpeg_declaring
from tests.helpers.images import write_image_folder

LOADERS = {
    'LoadImageRobust': lambda **kw: LoadImageRobust(**kw),
    'LoadImageRobust placeholder': lambda **kw: LoadImageRobust(on_error='placeholder', **kw),
    'DecodeRandomResizedCrop': lambda **kw: DecodeRandomResizedCrop(scale=16, **kw),
    'DecodeCenterCrop': lambda **kw: DecodeCenterCrop(crop_size=16, **kw),
}


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_max_pixels_is_configurable_and_a_file_over_it_is_recorded(name, tmp_path, monkeypatch):
    path = os.path.join(write_image_folder(str(tmp_path / 'data'), ['a'], size=40), 'a',
                        '000.JPEG')
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    assert LOADERS[name](max_pixels=1600).transform({'img_path': path}) is not None
    out = LOADERS[name](max_pixels=1599).transform({'img_path': path})
    if 'placeholder' in name or name == 'DecodeCenterCrop':
        assert out['img'].max() == 0  # the stand-in: evaluation still scores the file
    else:
        assert out is None  # mmengine's dataset draws another sample
    (record, ) = os.listdir(tmp_path / 'records')
    line = (tmp_path / 'records' / record).read_text()
    assert line == (f'{path}\t{path}: declares 40 x 40 = 1,600 pixels, more than '
                    'max_pixels=1,599; not decoded (a decompression bomb or a lying header). '
                    'If such images are real, raise max_pixels on the loading transform\n')


@pytest.mark.parametrize('name', sorted(LOADERS))
def test_a_bomb_is_recorded_by_every_loading_transform_at_the_default_limit(name, tmp_path,
                                                                            monkeypatch):
    path = tmp_path / 'bomb.JPEG'
    path.write_bytes(jpeg_declaring(40000, 40000))  # OpenCV raised cv2.error, killing workers
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(tmp_path / 'records')))
    out = LOADERS[name]().transform({'img_path': str(path)})
    assert out is None or not np.any(out['img'])
    (record, ) = os.listdir(tmp_path / 'records')
    assert 'declares 40000 x 40000 = 1,600,000,000 pixels, more than max_pixels=89,478,485' \
        in (tmp_path / 'records' / record).read_text()


def test_max_pixels_must_be_a_positive_count():
    with pytest.raises(ValueError, match=r'DecodeCenterCrop.max_pixels=0 must be a positive'):
        DecodeCenterCrop(max_pixels=0)
