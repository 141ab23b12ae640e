"""NonFiniteLossHook with the real Runner: a NaN loss stops the run with a sentence before
anything of that step is saved; loss-scaler skips are counted, not fatal."""
import math

import pytest
import torch

from tests.helpers.toy_runner import ToyModel, make_runner, toy_dataset

HOOKS = [dict(type='NonFiniteLossHook')]
CHECKPOINT_EVERY_ITER = dict(type='AtomicCheckpointHook', interval=1, by_epoch=False)


def test_nan_loss_stops_at_its_iteration_and_keeps_the_last_good_checkpoint(tmp_path):
    data = toy_dataset()
    data[9]['inputs'] = torch.full((4, ), math.nan)  # batch 3 of 4 (no shuffling)
    runner = make_runner(str(tmp_path), custom_hooks=HOOKS,
                         train_dataloader=dict(dataset=data, batch_size=4,
                                               sampler=dict(type='DefaultSampler',
                                                            shuffle=False),
                                               collate_fn=dict(type='default_collate')),
                         default_hooks=dict(checkpoint=CHECKPOINT_EVERY_ITER))
    good = str(tmp_path / 'iter_2.pth')
    with pytest.raises(FloatingPointError,
                       match=rf'Iteration 3 \(epoch 1\): the loss is nan; training stopped '
                             rf'before saving anything from this step\. The last good checkpoint '
                             rf'is {good}\.'):
        runner.train()
    assert (tmp_path / 'last_checkpoint').read_text() == good
    assert not (tmp_path / 'iter_3.pth').exists()
    state = torch.load(good, map_location='cpu', weights_only=False)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())


def test_non_finite_weights_are_never_saved(tmp_path):
    from resnest_mm.engine.hooks import NonFiniteLossHook
    runner = make_runner(str(tmp_path))
    with pytest.raises(FloatingPointError, match=r'weight linear.weight is not finite, so no '
                                                 r'checkpoint was written\. The last good '
                                                 r'checkpoint is none yet'):
        NonFiniteLossHook().before_save_checkpoint(
            runner, dict(state_dict={'linear.weight': torch.tensor([1., math.inf])}))


class SquareLossModel(ToyModel):
    """loss = mean(logits ** 2): a huge input gives a huge but finite loss whatever the weights."""

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.linear(inputs)
        return dict(loss=logits.pow(2).mean()) if mode == 'loss' else logits


def test_loss_scaler_skips_are_counted_not_fatal(tmp_path):
    data = toy_dataset()
    data[5]['inputs'] = torch.full((4, ), 1e18)  # loss ~1e35: finite; x 65536: inf
    runner = make_runner(str(tmp_path), custom_hooks=HOOKS, model=SquareLossModel(),
                         train_dataloader=dict(dataset=data, batch_size=4,
                                               sampler=dict(type='DefaultSampler'),
                                               collate_fn=dict(type='default_collate')),
                         optim_wrapper=dict(type='CpuAmpOptimWrapper',
                                            optimizer=dict(type='SGD', lr=0.1)))
    runner.train_loop  # noqa: B018  (builds the loop, the dataloader and the optimizer wrapper)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    # a real dynamic loss scaler (on CPU AMP is bf16 and needs none; CUDA fp16 uses this one)
    runner.optim_wrapper.loss_scaler = torch.amp.GradScaler('cpu')
    runner.train()
    assert runner.message_hub.runtime_info['skipped_steps'] == 2  # once an epoch
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    log = open(next(tmp_path.glob('*/*.log'))).read()
    assert '1 optimizer step(s) skipped this epoch by dynamic loss scaling' in log
