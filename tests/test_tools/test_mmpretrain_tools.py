"""mmpretrain's tools and APIs on our config and checkpoint, and ours under mmpretrain's scope.

The checkpoint is the session's real 2-epoch digits run (``tiny_run``). Every tool must give the
same prediction for every image as our ``tools/test.py``: mmpretrain's ``tools/test.py`` (a copy
of the one mmpretrain 1.2 installs, run from a temp dir, with and without ``--tta``),
``get_model``, ``init_model`` and ``ImageClassificationInferencer``.
"""
import os
import shutil
import subprocess
import sys

import mmengine
import mmpretrain
import pytest
import torch

from resnest_mm.frontends.cli import test as our_test
from resnest_mm.frontends.cli import train as our_train
from resnest_mm.models import ResNeSt
from tests.helpers.tiny_run import CONFIG

MMPRETRAIN_SCOPE = 'tests/helpers/configs/digits_mmpretrain_scope.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
pytestmark = pytest.mark.slow  # (runs of the real tools)


def _data_options(run) -> list:
    return [f'{loader}.dataset.data_root={run["data_root"]}' for loader in LOADERS] + \
        [f'{loader}.num_workers=0' for loader in LOADERS] + \
        [f'{loader}.persistent_workers=False' for loader in LOADERS]


def _key(path: str) -> str:
    """``class/file``: the file names repeat across class folders."""
    return '/'.join(os.path.normpath(path).split(os.sep)[-2:])


def _predictions(path) -> dict:
    """class/file -> (label, scores) from a DumpResults file. The label is the top score's
    (AverageClsScoreTTA averages the scores but keeps the first view's ``pred_label``; the
    accuracy is computed from the scores)."""
    return {_key(r['img_path']): (int(r['pred_score'].argmax()), r['pred_score'])
            for r in mmengine.load(path)}


def _ours(run, config, tmp_path, *flags) -> dict:
    out = str(tmp_path / 'ours.pkl')
    metrics = our_test([config, run['checkpoint'], '--work-dir', str(tmp_path / 'ours'),
                        '--out', out, *flags, '--cfg-options', *_data_options(run)])
    return dict(metrics=metrics, predictions=_predictions(out))


def _mmpretrain_test_py(repo_root, run, config, tmp_path, *flags) -> dict:
    """mmpretrain 1.2's own tools/test.py (installed with it), copied to a temp dir and run."""
    tool = tmp_path / 'mmpretrain_tools' / 'test.py'
    tool.parent.mkdir()
    shutil.copy(os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'tools', 'test.py'),
                tool)
    out = str(tmp_path / 'theirs.pkl')
    proc = subprocess.run(
        [sys.executable, str(tool), config, run['checkpoint'], '--work-dir',
         str(tmp_path / 'theirs'), '--out', out, *flags, '--cfg-options', *_data_options(run)],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dumped = mmengine.load(out)
    top1 = 100. * sum(int(r['pred_score'].argmax()) == int(r['gt_label']) for r in dumped) \
        / len(dumped)
    return dict(top1=top1, predictions=_predictions(out))


def _assert_same(theirs: dict, ours: dict) -> None:
    assert theirs.keys() == ours.keys() and len(ours) == 20
    for name, (label, scores) in ours.items():
        assert theirs[name][0] == label, name
        torch.testing.assert_close(torch.as_tensor(theirs[name][1]), scores, atol=1e-5,
                                   rtol=1e-4)


@pytest.mark.parametrize('config,flags', [(CONFIG, []), (MMPRETRAIN_SCOPE, ['--tta'])],
                         ids=['our-scope', 'mmpretrain-scope-tta'])
def test_mmpretrain_test_py_predicts_as_ours(repo_root, tiny_run, tmp_path, config, flags):
    """Was: ResNeStRunner is not in the runner registry."""
    ours = _ours(tiny_run, config, tmp_path, *flags)
    theirs = _mmpretrain_test_py(repo_root, tiny_run, config, tmp_path, *flags)
    assert theirs['top1'] == pytest.approx(ours['metrics']['accuracy/top1'])
    _assert_same(theirs['predictions'], ours['predictions'])


def test_tta_averages_the_image_and_its_flip(tiny_run, tmp_path):
    plain = _ours(tiny_run, CONFIG, tmp_path / 'plain')['predictions']
    tta = _ours(tiny_run, CONFIG, tmp_path / 'tta', '--tta')['predictions']
    assert plain.keys() == tta.keys()
    # the flip changes the scores: the wrapped model ran, with our weights
    assert any(not torch.allclose(plain[k][1], tta[k][1]) for k in plain)


def test_mmpretrain_apis_predict_as_our_test_tool(tiny_run, tmp_path):
    from mmpretrain.apis import ImageClassificationInferencer, get_model, init_model
    ours = _ours(tiny_run, MMPRETRAIN_SCOPE, tmp_path)['predictions']
    images = [os.path.join(tiny_run['data_root'], 'val', name, file)
              for name in sorted(os.listdir(os.path.join(tiny_run['data_root'], 'val')))
              for file in sorted(os.listdir(os.path.join(tiny_run['data_root'], 'val', name)))]
    for build in (get_model, init_model):
        model = build(MMPRETRAIN_SCOPE, tiny_run['checkpoint'])
        assert isinstance(model.backbone, ResNeSt)  # ours, not mmpretrain's ResNeSt
        inferencer = ImageClassificationInferencer(model)
        for result, image in zip(inferencer(images), images):
            label, scores = ours[_key(image)]
            assert result['pred_label'] == label, image
            torch.testing.assert_close(torch.as_tensor(result['pred_scores']), scores,
                                       atol=1e-5, rtol=1e-4)
    for config in (CONFIG, MMPRETRAIN_SCOPE):  # (was: LoadImageRobust is not in the
        # mmpretrain::transform registry)
        inferencer = ImageClassificationInferencer(config, pretrained=tiny_run['checkpoint'])
        assert [r['pred_label'] for r in inferencer(images)] == \
            [ours[_key(i)][0] for i in images]


def test_get_model_refuses_half_loading(tiny_run, tmp_path):
    """mmpretrain's loader is non-strict: weights of another layout must be refused, not loaded
    in part."""
    from mmpretrain.apis import get_model

    from resnest_mm.models.utils import export_state_dict
    state = torch.load(tiny_run['checkpoint'], map_location='cpu', weights_only=True)
    path = tmp_path / 'mmpretrain_layout.pth'
    torch.save(dict(state_dict=export_state_dict(state['state_dict'], 'mmpretrain')), path)
    with pytest.raises(ValueError, match='loaded whole or not at all'):
        get_model(MMPRETRAIN_SCOPE, str(path))


def test_our_train_tool_runs_under_mmpretrain_scope(tiny_run, tmp_path):
    """Was: KeyError: 'NonFiniteLossHook is not in the mmpretrain::hook registry'."""
    runner = our_train([MMPRETRAIN_SCOPE, '--work-dir', str(tmp_path), '--no-validate',
                        '--cfg-options', *_data_options(tiny_run), 'train_cfg.max_epochs=1',
                        'train_dataloader.batch_size=10'])
    assert runner.iter == 2
    assert isinstance(runner.model.backbone, ResNeSt)
    hooks = {type(h).__name__ for h in runner.hooks}
    assert {'NonFiniteLossHook', 'UnreadableImageHook', 'AtomicCheckpointHook'} <= hooks


def test_an_mmpretrain_config_trains_on_our_backbone(tmp_path):
    """mmpretrain 1.2's own ResNeSt-50 recipe (RandAugment, label smoothing, Mixup), its
    backbone type swapped for ours, on 4 images in place of ImageNet: 2 iterations."""
    from tests.helpers.tiny_config import write_tiny_data
    write_tiny_data(tmp_path / 'data', per_class=2)
    recipe = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnest',
                          'resnest50_32xb64_in1k.py')
    config = tmp_path / 'resnest50_ours.py'
    config.write_text(f"""
_base_ = [{recipe!r}]
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)
model = dict(backbone=dict(type='resnest_mm.ResNeSt'),
             head=dict(num_classes=2, loss=dict(num_classes=2)))
# 2 classes of 4 images in place of ImageNet
data_preprocessor = dict(num_classes=2)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    _delete_=True, type='CustomDataset', data_root={str(tmp_path / 'data')!r},
    data_prefix='train', pipeline={{{{_base_.train_pipeline}}}}))
train_cfg = dict(max_epochs=1)
test_cfg = dict()  # (the recipe has a test set but no test_cfg, which mmengine refuses)
""")
    runner = our_train([str(config), '--work-dir', str(tmp_path / 'work'), '--no-validate'])
    assert runner.iter == 2
    backbone = runner.model.backbone
    assert isinstance(backbone, ResNeSt) and backbone.conv1[0].out_channels == 32
    # mmpretrain's ImageClassifier of its ResNeSt-50 with a 2-class head
    assert sum(p.numel() for p in runner.model.parameters()) == 25_438_338
