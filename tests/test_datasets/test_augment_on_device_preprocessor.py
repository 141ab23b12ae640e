"""AugmentOnDevicePreprocessor and FastLighting(on_device=True): uint8 batches to the device, the
lighting noise added there, the same normalised batch as the CPU path, bit for bit."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate, pseudo_collate
from mmengine.registry import DefaultScope

from resnest_mm.datasets.augment_on_device_preprocessor import check_device_steps
from resnest_mm.registry import MODELS, TRANSFORMS
from resnest_mm.utils.errors import ExplainedValueError
from tests.helpers.images import write_image_folder

CONFIG = 'configs/resnest50_8xb128_in1k.py'


def _train_setup(on_device: bool, batch_augments=None):
    """The in1k config's train pipeline (64 px) and data preprocessor, lighting on the device
    or in the worker (then mmpretrain's ClsDataPreprocessor, as before this switch)."""
    cfg = Config.fromfile(CONFIG)
    steps = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    steps[0]['scale'] = 64
    pre = dict(cfg.data_preprocessor)
    if not on_device:
        steps[-2]['on_device'] = False
        steps[-1] = dict(type='PackInputs')
        pre['type'] = 'ClsDataPreprocessor'
    if batch_augments:
        pre['batch_augments'] = batch_augments
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return Compose([TRANSFORMS.build(t) for t in steps]), MODELS.build(pre)


def _run(tmp_path, on_device, collate, batch_augments=None, training=True):
    paths = sorted(str(p) for p in tmp_path.glob('*/*.JPEG'))
    pipeline, pre = _train_setup(on_device, batch_augments)
    samples = []
    for index, path in enumerate(paths):
        np.random.seed(100 + index)  # what ResumableSampler does per sample
        samples.append(pipeline(dict(img_path=path, gt_label=index % 2)))
    torch.manual_seed(0)  # batch augments draw from the global RNGs
    np.random.seed(0)
    return samples, pre(collate(samples), training=training)


@pytest.fixture
def photos(tmp_path):
    write_image_folder(str(tmp_path), ['a', 'b'], per_class=3, size=90, seed=4)
    return tmp_path


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_the_same_batch_as_lighting_in_the_worker_bit_for_bit(photos, collate):
    cpu_samples, cpu = _run(photos, False, collate)
    dev_samples, dev = _run(photos, True, collate)
    assert all(s['inputs'].dtype == torch.float32 for s in cpu_samples)
    # what leaves the worker: uint8 images and the three offsets (a quarter of the bytes)
    assert all(s['inputs'].dtype == torch.uint8 for s in dev_samples)
    assert all(s['data_samples'].lighting_offset.shape == (3, ) for s in dev_samples)
    assert torch.equal(dev['inputs'], cpu['inputs'])


def test_the_noise_is_added_before_mixup_as_in_the_worker(photos):
    """Each image gets its own noise before the batch is mixed: adding it after mixup (or not at
    all) gives another batch."""
    mixup = dict(augments=dict(type='Mixup', alpha=1.0))
    cpu = _run(photos, False, pseudo_collate, mixup)[1]
    dev = _run(photos, True, pseudo_collate, mixup)[1]
    assert torch.equal(dev['inputs'], cpu['inputs'])
    assert torch.equal(dev['data_samples'][0].gt_score, cpu['data_samples'][0].gt_score)


def test_a_batch_where_some_samples_lack_the_noise_is_refused(photos):
    samples = _run(photos, True, pseudo_collate)[0]
    del samples[1]['data_samples'].lighting_offset
    pre = _train_setup(True)[1]
    with pytest.raises(ExplainedValueError, match='1 of the 6 samples of a batch have no '
                       'lighting_offset'):
        pre(pseudo_collate(samples), training=True)


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_validation_batches_packed_without_a_copy_are_mmpretrains_batch(photos, collate):
    """The in1k test pipeline (DecodeCenterCrop, then PackForDevice: each image's HWC memory
    as it is, a channels-last CHW view) through ours or mmpretrain's ClsDataPreprocessor: no
    offsets, and bit for bit the contiguous batch of planes packed by PackInputs."""
    cfg = Config.fromfile(CONFIG)
    steps = cfg.test_dataloader.dataset.pipeline
    assert [t['type'] for t in steps] == ['resnest_mm.DecodeCenterCrop', 'resnest_mm.PackForDevice']
    planes = [dict(steps[0], planar=True), dict(type='PackInputs')]
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        test = Compose([TRANSFORMS.build(t) for t in steps])
        before = Compose([TRANSFORMS.build(t) for t in planes])
        ours = MODELS.build(dict(cfg.data_preprocessor))
        plain = MODELS.build(dict(cfg.data_preprocessor, type='ClsDataPreprocessor'))
    paths = sorted(str(p) for p in photos.glob('*/*.JPEG'))
    samples = [test(dict(img_path=p, gt_label=0)) for p in paths]
    assert samples[0]['inputs'].stride() == (1, 224 * 3, 3)  # HWC memory: nothing reordered
    expected = plain(pseudo_collate([before(dict(img_path=p, gt_label=0)) for p in paths]))
    assert expected['inputs'].is_contiguous()
    for preprocessor in (ours, plain):
        batch = preprocessor(collate(samples))['inputs']
        assert torch.equal(batch, expected['inputs']) and batch.is_contiguous()


def _loader(pack=None):
    pipeline = [dict(type='resnest_mm.LoadImageRobust'),
                dict(type='resnest_mm.FastLighting', eigval=[1., 1., 1.],
                     eigvec=np.eye(3).tolist(), on_device=True),
                pack or dict(type='PackInputs', meta_keys=('img_path', 'lighting_offset'))]
    # a data set wrapper, as RepeatDataset: the pipeline is found inside
    return dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(pipeline=pipeline)))


def test_the_check_refuses_what_would_drop_the_noise():
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        ours = MODELS.build(dict(type='resnest_mm.AugmentOnDevicePreprocessor'))
        plain = MODELS.build(dict(type='ClsDataPreprocessor'))
    check_device_steps('train_dataloader', _loader(), ours)
    with pytest.raises(ExplainedValueError, match="model.data_preprocessor is ClsDataPreprocessor"
                       ", which drops it; set data_preprocessor.type='resnest_mm.AugmentOnDevice"):
        check_device_steps('train_dataloader', _loader(), plain)
    with pytest.raises(ExplainedValueError,
                       match=r"PackInputs' meta_keys do not carry it \(they are 'sample_idx', "):
        check_device_steps('train_dataloader', _loader(dict(type='PackInputs')), ours)
    with pytest.raises(ExplainedValueError, match='no PackInputs follows it'):
        check_device_steps('train_dataloader', _loader(dict(type='resnest_mm.FastColorJitter')),
                           ours)
    off = _loader()
    off['dataset']['dataset']['pipeline'][1]['on_device'] = False
    check_device_steps('train_dataloader', off, plain)  # lighting in the worker: nothing to hand


def test_the_runner_refuses_a_config_that_would_drop_the_noise(tmp_path):
    """The check runs where every entry point passes (our runner's build_model)."""
    from mmengine.registry import RUNNERS

    from tests.helpers.tiny_config import TINY, write_tiny_data
    write_tiny_data(tmp_path / 'data', per_class=1)
    cfg = Config.fromfile(TINY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp_path / 'data')
    cfg.train_dataloader.dataset.pipeline.insert(-1, dict(
        type='resnest_mm.FastLighting', eigval=[1., 1., 1.], eigvec=np.eye(3).tolist(),
        on_device=True))
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(ExplainedValueError, match='FastLighting.on_device=True. leaves the '
                       'lighting noise to the data preprocessor'):
        RUNNERS.build(cfg)
