"""FusedSGD: torch's fused kernel (CPU, and CUDA's FusedSgdKernel where a GPU is present) with
plain SGD's result when a GradScaler skips the first step and when a parameter's first gradient
comes late."""
import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

from resnest_mm import compat
from resnest_mm.engine.optimizers import FusedSGD
from resnest_mm.registry import OPTIMIZERS

pytestmark = pytest.mark.compat  # must hold on every supported torch

HYPER = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3)
NESTEROV = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
DEVICES = [pytest.param('cpu', marks=pytest.mark.skipif(
    not compat.fused_sgd('cpu'), reason=f'torch {torch.__version__} has no fused CPU SGD')),
    pytest.param('cuda', marks=pytest.mark.skipif(
        not (torch.cuda.is_available() and compat.fused_sgd('cuda')),
        reason='the CUDA kernel needs a GPU (and torch 2.3+)'))]


def _npu_fused_sgd(params, **hyper):
    """What a config's ``type='NpuFusedSGD'`` builds on this (CPU) machine."""
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return OPTIMIZERS.build(dict(type='NpuFusedSGD', params=params, **hyper))


def _params(device='cpu', seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(5, 3, generator=gen).to(device)),
            nn.Parameter(torch.randn(3, generator=gen).to(device))]


def _clone(params):
    return [nn.Parameter(p.detach().clone()) for p in params]


def _scaled_backward(scaler, params, grads):
    """Backward of a loss whose gradient w.r.t. ``params`` is ``grads``, scaled by ``scaler``."""
    loss = sum((p * g).sum() for p, g in zip(params, grads))
    scaler.scale(loss).backward()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('hyper', [HYPER, NESTEROV], ids=['dampening', 'nesterov'])
def test_a_skipped_first_step_leaves_no_momentum(hyper, device, monkeypatch):
    """GradScaler skips step 1 (an inf gradient at the initial 2^16 scale); steps 2-4 are normal.
    Plain SGD keeps no state from step 1; torch's fused SGD kept ``empty_like`` momentum. Also
    the first real step (momentum starting under a scaler) matches plain SGD."""
    ours_params = _params(device)
    plain_params, clean_params = _clone(ours_params), _clone(ours_params)
    ours = _npu_fused_sgd(ours_params, **hyper)
    assert type(ours) is FusedSGD
    plain = torch.optim.SGD(plain_params, foreach=False, **hyper)
    clean = FusedSGD(clean_params, **hyper)  # the fused kernel that never saw step 1
    scalers = [torch.amp.GradScaler(device) for _ in range(2)]
    gen = torch.Generator().manual_seed(1)
    syncs, syncs_per_step = [], []
    original_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, 'item', lambda t: syncs.append(1) or original_item(t))
    for step in range(4):
        grads = [torch.randn(p.shape, generator=gen).to(device) for p in ours_params]
        if step == 0:
            grads[0][1, 2] = float('inf')
        for scaler, params, optimizer in zip(scalers, (ours_params, plain_params),
                                             (ours, plain)):
            syncs.clear()
            optimizer.zero_grad()
            _scaled_backward(scaler, params, grads)
            scaler.step(optimizer)
            scaler.update()
            if optimizer is ours:
                syncs_per_step.append(len(syncs))
        if step == 0:
            assert not ours.state and not plain.state  # the skipped step left nothing behind
            assert scalers[0].get_scale() == 2.0**15
            torch.testing.assert_close(ours_params, plain_params, rtol=0, atol=0)
        else:
            for p, g in zip(clean_params, grads):
                p.grad = g.clone()
            clean.step()
    for ours_p, clean_p, plain_p in zip(ours_params, clean_params, plain_params):
        assert torch.equal(ours_p, clean_p)  # bit for bit: the skip left no trace
        torch.testing.assert_close(ours_p, plain_p)  # the fused kernel's rounding, no more
    for ours_p, plain_p in zip(ours_params, plain_params):
        torch.testing.assert_close(ours.state[ours_p]['momentum_buffer'],
                                   plain.state[plain_p]['momentum_buffer'])
    # one host sync while momentum starts (steps 1 and 2: step 1 was skipped), none after
    assert syncs_per_step == [1, 1, 0, 0]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('hyper', [HYPER, NESTEROV], ids=['dampening', 'nesterov'])
def test_a_late_first_gradient_starts_its_momentum_like_plain_sgd(hyper, device):
    """Steps 1-2 train only the first parameter (the second is frozen); step 3 unfreezes it.
    torch's fused SGD raised TypeError at step 3."""
    ours_params = _params(device)
    plain_params = _clone(ours_params)
    alone = [FusedSGD([p], **hyper) for p in _clone(ours_params)]  # each on its own
    alone_params = [opt.param_groups[0]['params'][0] for opt in alone]
    ours = _npu_fused_sgd(ours_params, **hyper)
    plain = torch.optim.SGD(plain_params, foreach=False, **hyper)
    gen = torch.Generator().manual_seed(2)
    for step in range(4):
        live = [0] if step < 2 else [0, 1]
        grads = {i: torch.randn(ours_params[i].shape, generator=gen).to(device) for i in live}
        for params in (ours_params, plain_params, alone_params):
            for i, p in enumerate(params):
                p.grad = grads[i].clone() if i in live else None
        ours.step()
        plain.step()
        for i in live:
            alone[i].step()
    for ours_p, alone_p, plain_p in zip(ours_params, alone_params, plain_params):
        assert torch.equal(ours_p, alone_p)
        torch.testing.assert_close(ours_p, plain_p)
        torch.testing.assert_close(ours.state[ours_p]['momentum_buffer'],
                                   plain.state[plain_p]['momentum_buffer'])
