"""Curves and timings from the scalar log of a real run."""
import json

import matplotlib.image
import numpy as np
import pytest

from resnest_mm.analysis.log_curves import load_scalars, plot_curves, train_time
from resnest_mm.utils.errors import ExplainedKeyError, ExplainedValueError

pytestmark = pytest.mark.slow  # subprocesses or whole runs


def test_train_and_validation_share_the_iteration_axis(tiny_run):
    series = load_scalars(tiny_run['log_json'])
    iters, loss = series['loss']
    assert list(iters) == list(range(1, 11))  # 2 epochs x 5 iterations, logged every one
    assert np.isfinite(loss).all()
    val_at, top1 = series['accuracy/top1']
    assert list(val_at) == [5, 10]  # after epoch 1 and 2: their last iterations
    assert ((0 <= top1) & (top1 <= 100)).all()
    assert 'fps' in series and 'lr' in series
    assert 'val/time' in series  # validation's timings kept apart from training's


def test_plot_curve_writes_one_panel_per_key(tiny_run, tmp_path):
    out = str(tmp_path / 'curves.png')
    plot_curves([tiny_run['log_json']], ['loss', 'lr', 'accuracy/top1', 'fps'], out)
    image = matplotlib.image.imread(out)
    assert image.shape[0] > image.shape[1]  # four stacked panels: taller than wide
    assert image[..., :3].std() > 0.05  # something was drawn


def test_two_runs_with_a_legend(tiny_run, tmp_path):
    out = str(tmp_path / 'two.pdf')
    plot_curves([tiny_run['log_json']] * 2, ['loss'], out, legend=['a', 'b'], title='runs')
    assert open(out, 'rb').read(4) == b'%PDF'
    with pytest.raises(ExplainedValueError, match='2 logs'):
        plot_curves([tiny_run['log_json']] * 2, ['loss'], out, legend=['a'])


def test_unknown_key_lists_the_logged_ones(tiny_run, tmp_path):
    with pytest.raises(ExplainedKeyError, match='logged keys: .*accuracy/top1'):
        plot_curves([tiny_run['log_json']], ['acc'], str(tmp_path / 'x.png'))


def test_text_log_is_refused_with_the_line(tiny_run, tmp_path):
    bad = tmp_path / 'run.log'
    bad.write_text(json.dumps({'loss': 1., 'iter': 1, 'step': 1}) + '\nEpoch(train) [1]\n')
    with pytest.raises(ExplainedValueError, match='line 2'):
        load_scalars(str(bad))


def test_train_time(tiny_run):
    info = train_time(tiny_run['log_json'])
    assert info['logged'] == 10 and info['mean'] > 0
    assert info['slowest_epoch'][0] in (1, 2)
