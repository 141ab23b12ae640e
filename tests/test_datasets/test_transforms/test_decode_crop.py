"""DecodeRandomResizedCrop / DecodeCenterCrop: the same crops as mmpretrain's transforms after a
full decode, ImageNet's oddities handled, unreadable files skipped or stood in for."""
import io
import os

import numpy as np
import pytest
from mmpretrain.datasets.transforms import EfficientNetCenterCrop, RandomResizedCrop
from PIL import Image

from resnest_mm.datasets.transforms import (
    DecodeCenterCrop,
    DecodeRandomResizedCrop,
    LoadImageRobust,
)
from tests.helpers.odd_images import write_odd_images, write_unreadable_images


def _photo_file(folder, name: str, width: int, height: int) -> str:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(xx / 23.), 128 + 100 * np.cos(yy / 17.),
                    (xx + yy) * 255. / (width + height)], 2).astype(np.uint8)
    path = os.path.join(str(folder), name)
    Image.fromarray(rgb).save(path, quality=95)
    return path


def _reference(path: str, crop, seed: int) -> np.ndarray:
    """mmpretrain's way: full decode, then crop and Pillow resize."""
    np.random.seed(seed)
    return crop(LoadImageRobust()(dict(img_path=path)))['img'].astype(int)


@pytest.mark.parametrize('size', [(500, 375), (1200, 900)])
def test_random_resized_crop_matches_mmpretrain(tmp_path, size):
    path = _photo_file(tmp_path, 'photo.JPEG', *size)
    ours = DecodeRandomResizedCrop(scale=64, crop_ratio_range=(0.1, 1.0))
    theirs = RandomResizedCrop(scale=64, crop_ratio_range=(0.1, 1.0), backend='pillow')
    reductions = set()
    for seed in range(12):
        np.random.seed(seed)
        out = ours(dict(img_path=path))
        reductions.add(out['decode_reduce'])
        assert out['img'].shape == (64, 64, 3) and out['img'].dtype == np.uint8
        assert out['img_shape'] == (64, 64) and out['ori_shape'] == size[::-1]
        np.random.seed(seed)  # mmpretrain's box on the full image ...
        top, left, h, w = theirs.rand_crop_params(np.empty(size[::-1] + (0, )))
        box = out['crop_bbox']  # ... snapped to the grid of the reduced decode
        assert np.abs(box - [left, top, left + w, top + h]).max() <= out['decode_reduce'] // 2
        if out['decode_reduce'] == 1:
            diff = np.abs(out['img'].astype(int) - _reference(path, theirs, seed))
            assert diff.max() <= 2, seed
        else:  # decoded at 1/2-1/8 in the DCT: another low-pass filter, same picture
            full = LoadImageRobust()(dict(img_path=path))['img'][box[1]:box[3], box[0]:box[2]]
            want = np.asarray(Image.fromarray(full).resize((64, 64), Image.BILINEAR))
            diff = np.abs(out['img'].astype(int) - want)
            assert diff.mean() < 2.5, (seed, diff.mean())
    assert len(reductions) > 1  # both paths ran


def test_center_crop_matches_efficientnet_center_crop(tmp_path):
    for size in [(500, 375), (375, 500), (1000, 700)]:
        path = _photo_file(tmp_path, f'{size}.JPEG', *size)
        out = DecodeCenterCrop(crop_size=96, crop_padding=14)(dict(img_path=path))
        ref = _reference(path, EfficientNetCenterCrop(crop_size=96, crop_padding=14,
                                                      interpolation='bilinear',
                                                      backend='pillow'), 0)
        assert out['img'].shape == (96, 96, 3) and out['decode_reduce'] == 1
        assert np.abs(out['img'].astype(int) - ref).max() <= 2, size
    fast = DecodeCenterCrop(crop_size=96, crop_padding=14, dct_reduce=True)(dict(img_path=path))
    assert fast['decode_reduce'] == 4
    assert np.abs(fast['img'].astype(int) - ref).mean() < 2.5


def test_center_crop_is_packed_without_a_copy(tmp_path):
    """The evaluation crop is written as CHW planes: PackInputs's tensor is that memory."""
    from mmpretrain.datasets.transforms import PackInputs
    path = _photo_file(tmp_path, 'photo.JPEG', 500, 375)
    out = DecodeCenterCrop(crop_size=96, crop_padding=14)(dict(img_path=path))
    interleaved = DecodeCenterCrop(crop_size=96, crop_padding=14, planar=False)(
        dict(img_path=path))['img']
    assert np.array_equal(out['img'], interleaved) and interleaved.flags['C_CONTIGUOUS']
    packed = PackInputs()(out)['inputs']
    assert packed.shape == (3, 96, 96) and np.shares_memory(packed.numpy(), out['img'])


@pytest.mark.parametrize('name', ['cmyk.JPEG', 'gray.JPEG', 'png_named.JPEG', 'rgba.png',
                                  'gray16.png', 'rotated.JPEG'])
def test_oddities_crop_the_right_picture(tmp_path, name):
    expected = write_odd_images(str(tmp_path))[name]
    out = DecodeCenterCrop(crop_size=16, crop_padding=0)(dict(img_path=str(tmp_path / name)))
    h, w = expected.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    want = np.asarray(Image.fromarray(expected[top:top + side, left:left + side]).resize(
        (16, 16), Image.BILINEAR)).astype(int)
    assert out['ori_shape'] == (h, w)
    assert np.abs(out['img'][..., ::-1].astype(int) - want).mean() < 4, name


def test_unreadable_files_are_skipped_or_stood_in_for(tmp_path, monkeypatch):
    from resnest_mm.datasets.unreadable_log import UnreadableLog
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log',
                        UnreadableLog(str(tmp_path / 'record')))
    reasons = write_unreadable_images(str(tmp_path))
    for name in reasons:
        path = str(tmp_path / name)
        assert DecodeRandomResizedCrop(scale=32)(dict(img_path=path)) is None
        out = DecodeCenterCrop(crop_size=32)(dict(img_path=path))
        assert out['img'].shape == (32, 32, 3) and not out['img'].any()
    recorded = ''.join(p.read_text() for p in (tmp_path / 'record').iterdir())
    for name, reason in reasons.items():
        assert recorded.count(f'{name}: {reason}') == 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='scale=0'):
        DecodeRandomResizedCrop(scale=0)
    with pytest.raises(ValueError, match='to_float32'):
        DecodeCenterCrop(to_float32=True)
    with pytest.raises(ValueError, match='crop_padding=-1'):
        DecodeCenterCrop(crop_padding=-1)


def test_reduced_decode_is_used_only_when_the_crop_covers_the_output(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((900, 1200, 3), np.uint8)).save(buf, format='JPEG')
    path = tmp_path / 'big.JPEG'
    path.write_bytes(buf.getvalue())
    def reduce(crop_size):
        crop = DecodeCenterCrop(crop_size=crop_size, dct_reduce=True)
        return crop(dict(img_path=str(path)))['decode_reduce']

    assert (reduce(224), reduce(100), reduce(500)) == (2, 4, 1)


def test_an_image_in_memory_is_cropped_as_its_file(tmp_path):
    """Inference on arrays (and mmpretrain's inferencer) hands the loaders ``img``, no path."""
    import cv2

    path = _photo_file(tmp_path, 'photo.JPEG', 500, 375)
    array = cv2.imread(path)
    for transform in (DecodeCenterCrop(crop_size=96), LoadImageRobust()):
        from_file = transform(dict(img_path=path))
        from_array = transform(dict(img=array.copy()))
        np.testing.assert_array_equal(from_array['img'], from_file['img'])
        assert from_array['ori_shape'] == from_file['ori_shape'] == (375, 500)
    with pytest.raises(ValueError, match='neither img_path'):
        LoadImageRobust()(dict())


@pytest.mark.parametrize('ranges', [dict(crop_ratio_range=(0.1, 1.0)),
                                    dict(crop_ratio_range=(0.08, 1.0), max_attempts=3),
                                    dict(crop_ratio_range=(0.9, 1.0),
                                         aspect_ratio_range=(0.5, 0.6)),
                                    dict(crop_ratio_range=(1.0, 1.0),
                                         aspect_ratio_range=(1.5, 2.0))])
def test_crop_boxes_are_mmpretrains_draw_for_draw(ranges):
    """The box is mmpretrain's for the same seed, fallbacks included, and the random stream
    is left where mmpretrain leaves it (the flip and jitter that follow draw the same)."""
    ours = DecodeRandomResizedCrop(scale=224, **ranges)
    theirs = RandomResizedCrop(scale=224, **ranges)
    for height, width in [(375, 500), (500, 375), (100, 1000), (1000, 100), (224, 224), (7, 9)]:
        for seed in range(40):
            np.random.seed(seed)
            box = ours.crop_box(height, width)
            after = np.random.random()
            np.random.seed(seed)
            assert box == theirs.rand_crop_params(np.empty((height, width, 0))), (height, seed)
            assert after == np.random.random()
