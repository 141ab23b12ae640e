"""resnest_mm.compat on the torch that runs the suite: each guard agrees with what this torch
really does, a feature it lacks is refused in one sentence when used, and the demo config
trains, resumes and tests. ``make test-torch2.1`` and ``make test-torch2.15`` run the tests
marked ``compat`` (this file and a few others) on the oldest and the newest supported torch."""
import json
import os

import pytest
import torch
from torch import nn

from resnest_mm import compat
from resnest_mm.utils.errors import ExplainedRuntimeError
from tests.helpers.images import write_image_folder
from tests.helpers.tiny_config import TINY
from tests.helpers.tiny_run import CONFIG, DIGIT_NAMES

pytestmark = pytest.mark.compat


def test_torch_version_is_the_running_one():
    assert compat.TORCH_VERSION[:2] == tuple(int(v) for v in torch.__version__.split('.')[:2])
    assert compat.torch_at_least((2, 1)) and not compat.torch_at_least((99, ))


def test_a_feature_this_torch_lacks_is_refused_in_one_sentence():
    compat.require_torch((2, 1), 'anything')  # every supported torch has it
    with pytest.raises(ExplainedRuntimeError) as info:
        compat.require_torch((99, 0), 'time travel')
    assert str(info.value) == (
        f'time travel needs torch >= 99.0, but torch {torch.__version__} is installed: leave it '
        "out, or install a newer torch with its torchvision (pip install 'torch>=99.0,<2.16' "
        'torchvision).')


def _fused_sgd_really_runs(device_type: str) -> bool:
    param = nn.Parameter(torch.ones(3, device=device_type))
    param.grad = torch.ones(3, device=device_type)
    try:
        torch.optim.SGD([param], lr=0.1, momentum=0.9, fused=True).step()
    except (TypeError, RuntimeError):  # no `fused` argument (< 2.3), no kernel for the device
        return False
    return True


def test_fused_sgd_guard_matches_this_torch():
    assert compat.fused_sgd('cpu') == _fused_sgd_really_runs('cpu')
    assert not compat.fused_sgd('npu')  # torch's own fused SGD has no NPU kernel


def test_fused_sgd_where_torch_has_none_is_one_sentence():
    from resnest_mm.engine.optimizers import FusedSGD
    params = [nn.Parameter(torch.ones(3))]
    if compat.fused_sgd('cpu'):
        optimizer = FusedSGD(iter(params), lr=0.1, momentum=0.9)  # a generator, read once
        params[0].grad = torch.ones(3)
        optimizer.step()
        assert torch.allclose(params[0].detach(), torch.full((3, ), 0.9))
    else:
        with pytest.raises(ExplainedRuntimeError, match=r'^fused SGD on cpu needs torch >= 2\.4, '
                                                        r'but torch \S+ is installed'):
            FusedSGD(params, lr=0.1)


def test_grad_scaler_on_every_torch():
    disabled = compat.grad_scaler('cpu', enabled=False)  # the CPU's bf16 AMP holds one
    assert compat.is_grad_scaler(disabled) and not disabled.is_enabled()
    assert not compat.is_grad_scaler(object())
    if compat.torch_at_least((2, 3)):
        assert compat.grad_scaler('cpu').is_enabled()
    else:
        with pytest.raises(ExplainedRuntimeError, match=r'^loss scaling on cpu needs torch'):
            compat.grad_scaler('cpu')


def _round_trip(tmp_path, config, classes, batch):
    """Train one epoch, resume to the second, test: the round trip every supported torch must
    run (2 iterations an epoch on 32-pixel JPEGs, one per class and split)."""
    from resnest_mm.frontends.cli import test, train
    data = str(tmp_path / 'data')
    for split, seed in (('train', 0), ('val', 1)):
        write_image_folder(os.path.join(data, split), classes, per_class=2 * batch // len(classes),
                           size=32, seed=seed)
    work_dir = str(tmp_path / 'work')
    options = ['default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={data}', f'{loader}.batch_size={batch}',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    train([config, '--work-dir', work_dir, '--no-validate', '--cfg-options',
           'train_cfg.max_epochs=1', *options])
    assert os.path.isfile(os.path.join(work_dir, 'epoch_1.pth'))
    runner = train([config, '--work-dir', work_dir, '--no-validate', '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2', *options])
    assert runner.epoch == 2 and runner.iter == 4  # the first epoch kept, the second run
    metrics = test([config, os.path.join(work_dir, 'epoch_2.pth'), '--work-dir',
                    str(tmp_path / 'test'), '--cfg-options', *options])
    assert 0 <= metrics['accuracy/top1'] <= 100
    summary = json.load(open(tmp_path / 'test' / 'summary.json'))
    assert summary['accuracy/top1'] == metrics['accuracy/top1']


def test_tiny_config_trains_resumes_and_tests(tmp_path):
    """The demo recipe on a tiny ResNet (seconds): the round trip of ``make test-fast``."""
    _round_trip(tmp_path, TINY, ['a', 'b'], batch=2)


@pytest.mark.slow  # ResNeSt-50: about a minute on 2 cores
def test_demo_config_trains_resumes_and_tests(tmp_path):
    """The demo config's ResNeSt-50 itself, on every supported torch."""
    _round_trip(tmp_path, CONFIG, DIGIT_NAMES, batch=5)
