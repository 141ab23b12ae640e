"""Split-attention conv against a direct transcription of the paper's equations."""
import pytest
import torch
import torch.nn.functional as F

from resnest_mm.models.layers import SplitAttentionConv2d


def _reference(layer: SplitAttentionConv2d, x: torch.Tensor) -> torch.Tensor:
    """Eq. (1)-(3) of the paper written out per split and per cardinal group."""
    r, g, c = layer.radix, layer.groups, layer.channels
    u = F.relu(layer.bn0(layer.conv(x)))
    splits = list(torch.split(u, c, dim=1))              # radix tensors of C channels
    s = F.adaptive_avg_pool2d(sum(splits), 1)
    logits = layer.fc2(F.relu(layer.bn1(layer.fc1(s))))  # per group k: radix blocks of C/g
    out = torch.zeros_like(splits[0])
    cg = c // g
    for k in range(g):
        block = logits[:, k * r * cg:(k + 1) * r * cg].view(x.shape[0], r, cg, 1, 1)
        weights = block.softmax(dim=1) if r > 1 else torch.sigmoid(block)
        for i in range(r):
            out[:, k * cg:(k + 1) * cg] += weights[:, i] * splits[i][:, k * cg:(k + 1) * cg]
    return out


@pytest.mark.parametrize('radix,groups', [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2), (1, 4)])
def test_matches_paper_equations(radix, groups):
    torch.manual_seed(radix * 10 + groups)
    layer = SplitAttentionConv2d(16, 16, radix=radix, groups=groups).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _reference(layer, x))


def test_channels_last_input_gives_same_result():
    layer = SplitAttentionConv2d(16, 16).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(layer(x.to(memory_format=torch.channels_last)), layer(x))


def test_rejects_bad_radix():
    with pytest.raises(ValueError, match='radix'):
        SplitAttentionConv2d(16, 16, radix=0)


@pytest.mark.parametrize('groups', [1, 2])
def test_channels_last_path_gives_the_same_outputs_and_gradients(groups):
    torch.manual_seed(0)
    layer = SplitAttentionConv2d(32, 32, groups=groups, radix=2).train()
    x = torch.randn(2, 32, 8, 8)
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        layer.zero_grad()
        inputs = x.clone().contiguous(memory_format=fmt).requires_grad_()
        out = layer.to(memory_format=fmt)(inputs)
        (out * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
        results.append((out.detach(), inputs.grad, layer.fc2.weight.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a.contiguous(), b.contiguous(), rtol=1e-4, atol=1e-4)


class OtherNorm(torch.nn.BatchNorm2d):
    """A per-channel norm layer with a forward of its own (SyncBN, say): it must be the one
    that runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 1.5


def _layouts():
    return (torch.contiguous_format, torch.channels_last)


@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('norm', [torch.nn.BatchNorm2d, OtherNorm])
def test_the_two_paths_agree_and_bn0_runs_its_own_forward(groups, momentum, norm):
    """The general path (NCHW) and the radix-2 channels_last path: outputs, every gradient, the
    running statistics and the batch counter end equal over two training steps and in eval
    (float64, so that any difference is one of function, not of rounding), and on both paths
    ``bn0``'s own forward is what normalises: the whole tensor on the general path, each split's
    channels on the channels_last one (no re-implementation of BatchNorm's momentum and counter
    logic)."""
    layers, seen = [], []
    for fmt in _layouts():
        torch.manual_seed(1)
        layer = SplitAttentionConv2d(32, 32, groups=groups, radix=2).train().double()
        layer.bn0 = norm(64, momentum=momentum).double()
        layer.bn0.register_forward_hook(
            lambda module, args, out, fmt=fmt: seen.append((fmt, args[0].shape[1])))
        with torch.no_grad():  # not the initial statistics: the update must be the same
            layer.bn0.weight.uniform_(0.5, 1.5)
            layer.bn0.running_var.uniform_(0.5, 2.)
        layers.append(layer.to(memory_format=fmt))
    x = torch.randn(3, 32, 9, 9, dtype=torch.float64)
    for _step in range(2):
        for layer, fmt in zip(layers, _layouts()):
            out = layer(x.contiguous(memory_format=fmt))
            assert out.is_contiguous(memory_format=fmt)
            (out * torch.arange(out.numel()).view_as(out).cos()).sum().backward()
    nchw, nhwc = layers
    calls = [(torch.contiguous_format, 64), (torch.channels_last, 32), (torch.channels_last, 32)]
    assert seen == calls * 2
    assert nhwc.bn0.num_batches_tracked.item() == nchw.bn0.num_batches_tracked.item() == 2
    for name in ('running_mean', 'running_var'):
        torch.testing.assert_close(getattr(nhwc.bn0, name), getattr(nchw.bn0, name), rtol=1e-12,
                                   atol=1e-12)
    for (name, a), b in zip(nchw.named_parameters(), nhwc.parameters()):
        torch.testing.assert_close(b.grad.contiguous(), a.grad.contiguous(), rtol=1e-9,
                                   atol=1e-9, msg=name)
    nchw.eval()
    nhwc.eval()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x.contiguous(memory_format=torch.channels_last)),
                                   nchw(x), rtol=1e-9, atol=1e-9)
    assert seen[6:] == calls[1:] + calls[:1]  # eval: channels_last first


def test_channels_last_stays_channels_last_forward_and_backward():
    """No feature map the channels_last path creates, gradients included, is in NCHW: one would
    mean a layout conversion or a slow mixed-layout kernel (adaptive_avg_pool2d's backward made
    one per layer). Views (the splits, expanded gradients) are in neither layout."""
    from torch.utils._python_dispatch import TorchDispatchMode

    made = []

    class Layouts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[2] * t.shape[3] > 1:
                    made.append((str(func), t.is_contiguous() and
                                 not t.is_contiguous(memory_format=torch.channels_last)))
            return out

    layer = SplitAttentionConv2d(32, 32, radix=2).train().to(memory_format=torch.channels_last)
    x = torch.randn(2, 32, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    with Layouts():
        out = layer(x)
        (out * out).sum().backward()
    assert len(made) > 10 and [func for func, nchw in made if nchw] == []
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
