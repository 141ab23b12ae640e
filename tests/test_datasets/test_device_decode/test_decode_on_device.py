"""Decoding on the device, run with device='cpu': the same crop boxes as the CPU path for the
same seed, images equal within resize tolerance, hostile files counted and listed, never fatal."""
import io
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from PIL import Image

from resnest_mm.datasets.device_decode import apply_decode_on_device
from resnest_mm.datasets.transforms import LoadImageRobust
from resnest_mm.datasets.unreadable_log import UnreadableLog
from resnest_mm.registry import MODELS, TRANSFORMS
from resnest_mm.utils.errors import ExplainedValueError
from tests.helpers.odd_images import write_odd_images

CONFIG = 'configs/resnest50_8xb128_in1k.py'


def _photo(path, width, height, seed, **save):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(xx / 13. + seed), 128 + 100 * np.cos(yy / 9.),
                    (xx + 2 * yy) * 255. / (width + 2 * height)], 2)
    rgb = (rgb + rng.normal(0, 12, rgb.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=90, **save)
    return str(path)


def _pipelines(scale=96):
    """The in1k config's train pipeline and data preprocessor, and their device versions."""
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.pipeline[0]['scale'] = scale
    cfg.train_dataloader.dataset.pipeline[0]['dct_reduce'] = False  # as the device: full size
    cfg.train_dataloader.dataset.pipeline[-1]['meta_keys'] = ('img_path', 'crop_bbox', 'flip',
                                                               'lighting_offset')
    cpu = (Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline]),
           MODELS.build(dict(cfg.data_preprocessor)))
    apply_decode_on_device(cfg)
    device = (Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline]),
              MODELS.build(cfg.data_preprocessor))
    return cpu, device


def _batch(pipeline, paths, seed):
    outs = []
    for index, path in enumerate(paths):
        np.random.seed(seed + index)
        outs.append(pipeline(dict(img_path=path, gt_label=index % 3)))
    return outs


def test_the_switch_rewrites_the_train_pipeline_only():
    cfg = Config.fromfile(CONFIG)
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    apply_decode_on_device(cfg)
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert types == ['resnest_mm.ReadForDeviceDecode', 'PackInputs']
    assert cfg.data_preprocessor.type == 'resnest_mm.DecodeOnDevicePreprocessor'
    assert cfg.test_dataloader.dataset.pipeline == test_pipeline
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.pipeline.insert(1, dict(type='RandomErasing'))
    with pytest.raises(ExplainedValueError, match='has RandomErasing, which the device path'):
        apply_decode_on_device(cfg)


def test_same_boxes_and_images_as_the_cpu_path(tmp_path):
    paths = [_photo(tmp_path / f'{i}.JPEG', *size, seed=i, subsampling=sub)
             for i, (size, sub) in enumerate([((500, 375), 2), ((375, 500), 0),
                                              ((640, 480), 1), ((333, 501), 2)])]
    paths.append(str(tmp_path / 'b.png'))  # not a JPEG: the worker decodes it
    Image.open(paths[0]).save(paths[-1])
    (cpu, cpu_pre), (dev, dev_pre) = _pipelines()
    for seed in (0, 100):
        cpu_outs, dev_outs = _batch(cpu, paths, seed), _batch(dev, paths, seed)
        for a, b in zip(cpu_outs, dev_outs):
            np.testing.assert_array_equal(a['data_samples'].crop_bbox, b['data_samples'].crop_bbox)
            assert a['data_samples'].flip == b['data_samples'].flip
        assert [o['inputs'].ndim for o in dev_outs] == [1, 1, 1, 1, 3]  # bytes, and one image
        want = cpu_pre(pseudo_collate(cpu_outs), training=True)
        got = dev_pre(pseudo_collate(dev_outs), training=True)
        assert got['inputs'].shape == want['inputs'].shape == (5, 3, 96, 96)
        diff = ((got['inputs'] - want['inputs']) * cpu_pre.std).abs()  # in grey levels
        assert diff.mean() < 0.2 and diff.max() <= 4, (diff.mean(), diff.max())
        torch.testing.assert_close(got['data_samples'][0].gt_label,
                                   want['data_samples'][0].gt_label)


def _broken_jpeg(path):
    """A JPEG whose header passes every check but whose scan header is impossible."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(buffer, 'JPEG')
    data = bytearray(buffer.getvalue())
    data[data.index(b'\xff\xda') + 4] = 9  # 9 components in the scan: libjpeg refuses
    path.write_bytes(bytes(data))
    return str(path)


def test_a_hostile_file_on_the_device_path_is_listed_and_left_out(tmp_path, monkeypatch):
    folder = tmp_path / 'unreadable'
    monkeypatch.setattr(LoadImageRobust, 'unreadable_log', UnreadableLog(str(folder)))
    good = _photo(tmp_path / 'good.JPEG', 200, 150, seed=1)
    bad = _broken_jpeg(tmp_path / 'bad.JPEG')
    write_odd_images(str(tmp_path))
    odd = [str(tmp_path / name) for name in ('cmyk.JPEG', 'rotated.JPEG', 'gray.JPEG')]
    _, (dev, dev_pre) = _pipelines(scale=32)
    dev_pre.unreadable_log = UnreadableLog(str(folder))  # as UnreadableImageHook gives it
    outs = _batch(dev, [good, bad] + odd, seed=0)
    assert outs[1]['inputs'].ndim == 1  # the header is fine: it reaches the device path
    result = dev_pre(pseudo_collate(outs), training=True)
    assert result['inputs'].shape == (4, 3, 32, 32)
    assert [s.img_path for s in result['data_samples']] == [good] + odd
    listed = ''.join(p.read_text() for p in folder.iterdir())
    assert listed.startswith(f'{bad}\t{bad}: ') and listed.count('\n') == 1


def test_validation_batches_pass_through(tmp_path):
    path = _photo(tmp_path / 'a.JPEG', 120, 90, seed=0)
    cfg = Config.fromfile(CONFIG)
    test = Compose([TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline])
    apply_decode_on_device(cfg)
    pre = MODELS.build(cfg.data_preprocessor)
    plain = MODELS.build(dict(Config.fromfile(CONFIG).data_preprocessor,
                              type='ClsDataPreprocessor'))
    batch = pseudo_collate([test(dict(img_path=path, gt_label=0))])
    torch.testing.assert_close(pre(batch)['inputs'], plain(batch)['inputs'])
    assert os.path.exists(path)
