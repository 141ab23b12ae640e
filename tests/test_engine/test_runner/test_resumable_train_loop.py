"""ResumableEpochBasedTrainLoop with the real Runner: it skips what an iteration checkpoint
already covered, and says so when the sampler cannot skip."""
import pytest

from tests.helpers.toy_runner import make_runner, toy_dataset

LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)


def test_mid_epoch_start_skips_the_done_batches(tmp_path):
    runner = make_runner(str(tmp_path), train_cfg=LOOP,
                         train_dataloader=dict(
                             dataset=toy_dataset(), batch_size=4,
                             sampler=dict(type='ResumableSampler', shuffle=True),
                             collate_fn=dict(type='default_collate')))
    runner.train_loop._iter = 2  # as a resume from iter_2.pth sets it: 2 of 4 batches done
    runner.train()
    assert runner.iter == 8 and runner.epoch == 2  # 2 + 2 left in epoch 1, then 4


def test_a_sampler_that_cannot_skip_is_named(tmp_path):
    runner = make_runner(str(tmp_path), train_cfg=LOOP)  # DefaultSampler
    runner.train_loop._iter = 2
    with pytest.raises(ValueError, match=r"Resuming inside epoch 1 \(iteration 2 of 4\) needs a "
                                        r"sampler that can skip.*DefaultSampler would replay"):
        runner.train()


def test_iteration_interval_is_checked():
    from resnest_mm.engine.hooks import AtomicCheckpointHook
    with pytest.raises(ValueError, match='iter_interval=0'):
        AtomicCheckpointHook(iter_interval=0)


def test_random_state_survives_a_weights_only_load():
    import io
    import random

    import numpy as np
    import torch

    from resnest_mm.engine.runner import capture_random_state, restore_random_state
    buf = io.BytesIO()
    torch.save(dict(meta=dict(random_state=capture_random_state())), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)['meta']['random_state']  # as tools/test.py
    expected = (np.random.rand(), random.random(), torch.rand(1).item())
    restore_random_state(state)
    assert (np.random.rand(), random.random(), torch.rand(1).item()) == expected


def test_mid_epoch_checkpoint_with_another_world_size_is_refused(tmp_path):
    import torch

    from resnest_mm.utils.errors import ExplainedValueError
    loader = dict(dataset=toy_dataset(), batch_size=4,
                  sampler=dict(type='ResumableSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, by_epoch=False))
    make_runner(str(tmp_path), train_cfg=LOOP, train_dataloader=loader,
                default_hooks=hooks).train()
    path = tmp_path / 'iter_2.pth'  # 2 of 4 iterations into epoch 1
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint['meta']['epoch_position'] == dict(done=2, world_size=1, batch_size=4)
    checkpoint['meta']['epoch_position']['world_size'] = 2  # as if saved by 2 processes
    torch.save(checkpoint, path)
    runner = make_runner(str(tmp_path / 'again'), train_cfg=LOOP, train_dataloader=loader,
                         default_hooks=hooks, resume=True, load_from=str(path))
    with pytest.raises(ExplainedValueError, match=r'saved 2 iterations into an epoch by 2 '
                                                  r'process\(es\) with batch 4 each; this run has '
                                                  r'1 with batch 4'):
        runner.train()
