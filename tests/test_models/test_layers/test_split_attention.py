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
