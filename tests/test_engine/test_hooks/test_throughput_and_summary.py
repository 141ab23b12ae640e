"""ThroughputHook's FPS follows the seed's formula; RunSummaryHook writes summary.json."""
import json
import os

import numpy as np
import pytest

from resnest_mm.engine.hooks import RunSummaryHook, ThroughputHook
from tests.helpers.toy_runner import make_runner


@pytest.fixture
def runner(tmp_path):
    runner = make_runner(str(tmp_path), custom_hooks=[dict(type='ThroughputHook', skip_iters=2),
                                                      dict(type='RunSummaryHook')])
    runner.train()
    return runner


def test_fps_is_batch_times_world_over_mean_iteration_time(runner):
    # IterTimerHook times an iteration the same way (end of the previous one to the end of this
    # one, data wait included); the seed's FPS leaves out the first 2 of each epoch.
    times = runner.message_hub.get_scalar('train/time').data[0]
    per_epoch = len(times) // 2
    counted = np.concatenate([times[2:per_epoch], times[per_epoch + 2:]])
    expected = 4 / counted.mean()
    fps = runner.message_hub.get_info('fps_train')
    assert fps == pytest.approx(expected, rel=0.25)


def test_summary_fields(runner):
    with open(os.path.join(runner.work_dir, 'summary.json')) as f:
        summary = json.load(f)
    assert set(summary) >= {'fps', 'epochs', 'iters', 'world_size', 'device', 'amp',
                            'batch_size_per_device', 'config', 'mode'}
    assert summary['epochs'] == 2 and summary['iters'] == 8 and summary['world_size'] == 1
    assert summary['batch_size_per_device'] == 4 and summary['fps'] > 0


def test_hooks_are_registered_in_our_scope():
    from resnest_mm.registry import HOOKS
    assert HOOKS.get('ThroughputHook') is ThroughputHook
    assert HOOKS.get('RunSummaryHook') is RunSummaryHook
