"""Split-attention convolution, the building block of ResNeSt.

Paper: "ResNeSt: Split-Attention Networks", Zhang et al., 2020 (arXiv:2004.08955). Numerically the
``SplAtConv2d`` of the authors' code (github.com/zhanghang1989/ResNeSt, PyPI ``resnest``), with
the same parameter names so official and timm weights load unchanged; written with reshapes
instead of Python lists of splits, so it is TorchScript-able.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.errors import ExplainedValueError


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over H and W as ``(B, C, 1, 1)``, whose gradient keeps ``x``'s memory format.

    ``F.adaptive_avg_pool2d(x, 1)`` is ``x.mean((2, 3))`` in PyTorch, and its backward
    materialises ``grad.expand(...) / (H * W)`` in NCHW even for a channels_last ``x``; added
    to the channels_last gradient from the attention's other use of ``x``, that costs a
    mixed-layout pass per split-attention layer. ``avg_pool2d``'s backward kernel writes ``x``'s
    layout. (The sum is taken in another order: equal within float rounding.)
    """
    return F.avg_pool2d(x, x.shape[2:])


class SplitAttentionConv2d(nn.Module):
    """A ``radix``-way split-attention convolution.

    One grouped convolution produces ``radix`` splits of ``channels`` each; their sum is pooled
    and squeezed through ``fc1``/``fc2`` into one attention logit per split and channel; a
    softmax across the splits (a sigmoid when ``radix == 1``) weights the splits, which are
    summed.

    Args:
        in_channels (int): Input channels.
        channels (int): Output channels.
        kernel_size (int): Kernel of the grouped convolution. Defaults to 3.
        stride (int): Its stride. Defaults to 1.
        padding (int): Its padding. Defaults to 1.
        dilation (int): Its dilation. Defaults to 1.
        groups (int): Cardinality: groups of the convolution per split. Defaults to 1.
        radix (int): Number of splits. Defaults to 2.
        reduction_factor (int): ``fc1`` has ``max(in_channels * radix // reduction_factor, 32)``
            channels. Defaults to 4.
        norm_cfg (dict, optional): Norm layer config (``BN``, ``SyncBN`` ...).
            Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 padding: int = 1,
                 dilation: int = 1,
                 groups: int = 1,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if radix < 1 or groups < 1:
            raise ExplainedValueError(f'backbone radix={radix} and groups={groups} must both be '
                                      '>= 1')
        norm_cfg = norm_cfg or dict(type='BN')
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.groups = groups
        self.channels = channels
        self.conv = nn.Conv2d(in_channels, channels * radix, kernel_size, stride=stride,
                              padding=padding, dilation=dilation, groups=groups * radix,
                              bias=False)
        self.bn0 = build_norm_layer(norm_cfg, channels * radix)[1]
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.bn1 = build_norm_layer(norm_cfg, inter_channels)[1]
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (a 1x1 map is contiguous in both layouts: it stays on the general path)
        if self.radix == 2 and not x.is_contiguous() and \
                x.is_contiguous(memory_format=torch.channels_last):
            # (TorchScript has no functional_call and cannot compare types: general path there)
            if not torch.jit.is_scripting():
                if isinstance(self.bn0, _BatchNorm):  # per-channel: a norm of each split
                    return self._radix2_channels_last(x)
        x = self.relu(self.bn0(self.conv(x)))
        batch = x.shape[0]
        if self.radix > 1:
            # (B, radix*C, H, W) -> (B, radix, C, H, W): split r is channels [r*C, (r+1)*C).
            splits = x.unflatten(1, (self.radix, self.channels))
            gap = splits.sum(dim=1)
        else:
            splits = x
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        attn = self.fc2(self.relu(self.bn1(self.fc1(gap))))
        if self.radix > 1:
            # fc2 is grouped by cardinality: its channels run (group, radix, C/group); the softmax
            # is across radix, and the result is laid out (radix, C) to match the splits.
            attn = attn.view(batch, self.groups, self.radix, -1).transpose(1, 2)
            attn = F.softmax(attn, dim=1).reshape(batch, self.radix, self.channels, 1, 1)
            return (splits * attn).sum(dim=1)
        return x * torch.sigmoid(attn)

    def _radix2_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """The same function for ``radix == 2``, a channels_last ``x`` and a per-channel
        ``bn0`` (any ``_BatchNorm``, SyncBN included), in the form that is fast there.

        In NHWC the (radix, C) view of the channels is not a cheap reshape, and the general
        path's product-and-sum over splits runs 2x slower than in NCHW (the reason channels_last
        made ResNeSt slower). Here each split is computed on its own:

        * split ``r`` of the grouped convolution is the ``r``-th half of the input channels
          convolved with the ``r``-th half of the filters in ``groups`` groups (on oneDNN, in
          NHWC, two such convolutions train faster than the grouped one);
        * ``bn0``'s own forward normalises each split, given that split's halves of its weight,
          bias and running statistics through ``torch.func.functional_call`` (what torch
          lacks: a norm layer normalises whole tensors only). Per-channel statistics make the
          two calls the function of one call on the whole tensor; the running statistics are
          updated in place through the halves, and the batch counter once (split 1 advances a
          copy, so both see the count one call would);
        * the pooled sum of the splits is the sum of the pooled splits (pooling is linear), a
          softmax over two logits is the sigmoid of their difference, and the weighted sum of
          two splits is one ``lerp``.

        Equal to the general path within float rounding (parity tests run both layouts, and a
        float64 test compares outputs, gradients and BN statistics); in NCHW the general path is
        the faster one, so it stays there.

        Why a second path, measured on a 2-vCPU AMD EPYC VM (``lscpu``: "AMD EPYC", AVX2;
        torch 2.14.1, fp32, batch 8, 224 px; 2026-12-07, shared by other jobs, load 2-9): the
        ResNeSt-50 train step (``benchmarks/model_step.py``'s ``step``) with this layer's
        channels_last forward swapped in-process, interleaved, 8-16 repeats, paired per repeat
        against the former per-split form that carried its own copy of BatchNorm's forward
        (= 1), median of the paired ratios per run: this form 1.00 in the quietest run (1.05
        and 1.06 under load); the two convolutions joined by ``torch.cat`` for one ``bn0`` call
        1.10 in that run (others 1.09, 1.05, 1.04, 0.83); the grouped convolution with one
        ``bn0`` call (the former whole-tensor path) 1.10, 1.19, 1.04, 1.15.
        ``python benchmarks/model_step.py --models ours original timm --repeats 5`` on the
        same machine that day, ours channels_last / ours NCHW: 0.940 with this layer, 0.886,
        0.789 and 0.716 with the former one (steps of 1-11 s as the load came and went: within
        the noise).
        """
        conv, norm = self.conv, self.bn0
        states: List[Dict[str, torch.Tensor]] = [{}, {}]
        for name, tensor in itertools.chain(norm.named_parameters(recurse=False),
                                            norm.named_buffers(recurse=False)):
            if name == 'num_batches_tracked':  # one call advances it once: split 1 a copy
                states[0][name], states[1][name] = tensor, tensor.clone()
            else:  # per-channel weight, bias, running mean and variance: a half each
                states[0][name], states[1][name] = tensor.chunk(2)
        splits = []
        # chunk, not slicing: its backward is one concatenation (slices' would zero-fill and
        # add two full-size gradients)
        for half, weight, state in zip(x.chunk(2, dim=1), conv.weight.chunk(2, dim=0), states):
            y = F.conv2d(half, weight, None, conv.stride, conv.padding, conv.dilation,
                         self.groups)
            splits.append(self.relu(functional_call(norm, state, (y, ))))
        batch = x.shape[0]
        gap = global_avg_pool(splits[0]) + global_avg_pool(splits[1])
        attn = self.fc2(self.relu(self.bn1(self.fc1(gap))))
        # fc2's channels run (group, radix, C/group): logits of split 0 and 1 per group.
        attn = attn.view(batch, self.groups, 2, -1)
        weight0 = torch.sigmoid(attn[:, :, 0] - attn[:, :, 1]).reshape(batch, self.channels, 1, 1)
        return torch.lerp(splits[1], splits[0], weight0)
