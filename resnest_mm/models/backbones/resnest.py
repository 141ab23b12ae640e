"""ResNeSt backbone for mmpretrain's ``ImageClassifier``.

Paper: "ResNeSt: Split-Attention Networks", Zhang et al., 2020 (arXiv:2004.08955). The network is
the authors' (github.com/zhanghang1989/ResNeSt, PyPI ``resnest``): deep stem, average-pool
shortcut (``avg_down``), average-pool downsampling inside the block (``avd``), split attention.
Module names follow the original and timm (``conv1``, ``bn1``, ``layer1`` ..., ``conv2.fc1`` ...)
so official and timm weights load with only a ``backbone.`` prefix; see
:mod:`resnest_mm.models.utils.weight_conversion`. Unlike the original it is TorchScript-able and
has the options mmpretrain backbones have (``out_indices``, ``frozen_stages``, ``norm_eval``,
``norm_cfg``, ``zero_init_residual``, ``with_cp``, ``drop_path_rate``), and it reads mmpretrain's
ResNeSt arguments (``stem_channels``, ``avg_down_stride`` ...) as the same network mmpretrain
builds, or refuses them: :mod:`resnest_mm.models.backbones.mmpretrain_args`.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...compat import register_load_state_dict_pre_hook
from ...registry import MODELS
from ...utils.errors import ExplainedKeyError, ExplainedValueError
from ..layers.split_attention import SplitAttentionConv2d
from .mmpretrain_args import from_mmpretrain_args


class ResNeStBottleneck(nn.Module):
    """ResNeSt bottleneck: 1x1 conv, split-attention 3x3 conv, 1x1 conv, residual.

    Args:
        in_channels (int): Input channels.
        planes (int): Base width of the stage; the output has ``planes * 4`` channels.
        stride (int): Stride of the block. Defaults to 1.
        downsample (nn.Module, optional): Shortcut projection. Defaults to None (identity).
        radix (int): Splits of the split-attention conv. Defaults to 2.
        groups (int): Cardinality. Defaults to 1.
        base_width (int): Bottleneck width per group for ``planes == 64``. Defaults to 64.
        avd (bool): Downsample with a 3x3 average pool instead of a strided conv.
            Defaults to True.
        avd_first (bool): Put that pool before the split-attention conv instead of after.
            Defaults to False.
        is_first (bool): First block of a stage (enables ``avd`` even at stride 1, as in the
            original). Defaults to False.
        reduction_factor (int): Squeeze ratio of the attention. Defaults to 4.
        norm_cfg (dict, optional): Norm layer config. Defaults to ``dict(type='BN')``.
        with_cp (bool): Trade compute for memory with activation checkpointing.
            Defaults to False.
        drop_path_rate (float): Stochastic depth: the probability of dropping the residual
            branch per sample while training. Defaults to 0.
    """

    expansion = 4

    def __init__(self,
                 in_channels: int,
                 planes: int,
                 stride: int = 1,
                 downsample: Optional[nn.Module] = None,
                 radix: int = 2,
                 groups: int = 1,
                 base_width: int = 64,
                 avd: bool = True,
                 avd_first: bool = False,
                 is_first: bool = False,
                 reduction_factor: int = 4,
                 norm_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN')
        group_width = int(planes * (base_width / 64.)) * groups
        use_avd = avd and (stride > 1 or is_first)
        self.with_cp = with_cp

        self.conv1 = nn.Conv2d(in_channels, group_width, 1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, group_width)[1]
        pool: nn.Module = nn.AvgPool2d(3, stride, padding=1) if use_avd else nn.Identity()
        self.avd_first = pool if avd_first else nn.Identity()
        self.conv2 = SplitAttentionConv2d(
            group_width, group_width, kernel_size=3, stride=1 if use_avd else stride,
            padding=1, groups=groups, radix=radix, reduction_factor=reduction_factor,
            norm_cfg=norm_cfg)
        self.avd_last = nn.Identity() if avd_first else pool
        self.conv3 = nn.Conv2d(group_width, planes * self.expansion, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, planes * self.expansion)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample if downsample is not None else nn.Identity()
        # (no parameters: the state dict is the same with or without it)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.avd_last(self.conv2(self.avd_first(out)))
        out = self.drop_path(self.bn3(self.conv3(out)))
        return out + self.downsample(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad and not torch.jit.is_scripting():
            out = self._checkpointed(x)
        else:
            out = self._inner_forward(x)
        return self.relu(out)

    @torch.jit.unused
    def _checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        return cp.checkpoint(self._inner_forward, x, use_reentrant=False)


@MODELS.register_module()
class ResNeSt(BaseModule):
    """ResNeSt backbone (depths 50, 101, 152, 200, 269).

    The defaults build the paper's ``ResNeSt-{depth}`` (radix 2, cardinality 1, width 64,
    ``avd`` after the split-attention conv). ``radix``, ``groups``, ``base_width`` and
    ``avd_first=True`` build the original ``resnest50_fast_*`` variants, e.g.
    ``resnest50_fast_4s2x40d`` is ``radix=4, groups=2, base_width=40, avd_first=True``.

    Args:
        depth (int): 50, 101, 152, 200 or 269 (152 has no released weights; mmpretrain
            builds it).
        in_channels (int): Input image channels. Defaults to 3.
        stem_width (int, optional): Width of the first two stem convs (the third has twice as
            many). Defaults to 32 for depth 50 and 64 otherwise, as in the original.
        radix (int): Splits of the split-attention convs. Defaults to 2.
        groups (int): Cardinality. Defaults to 1.
        base_width (int): Bottleneck width (``bottleneck_width`` in the original).
            Defaults to 64.
        avd (bool): Average-pool downsampling in the first block of strided stages.
            Defaults to True.
        avd_first (bool): That pool before the split-attention conv. Defaults to False.
        reduction_factor (int): Squeeze ratio of the attention. Defaults to 4.
        out_indices (Sequence[int]): Stages (0-3) whose outputs are returned. Defaults to (3, ).
        frozen_stages (int): Stages to freeze (no grad, eval mode); -1 freezes nothing, 0 the
            stem, ``i`` the stem and stages 1..i. Defaults to -1.
        norm_cfg (dict): Norm layer config (``BN``, ``SyncBN`` ...).
            Defaults to ``dict(type='BN', requires_grad=True)``.
        norm_eval (bool): Keep norm layers in eval mode while training (frozen statistics).
            Defaults to False.
        zero_init_residual (bool, optional): Zero the last BN of every block (the original's
            ``last_gamma``). Defaults to False, or to True (mmpretrain's default) when
            mmpretrain arguments are given.
        with_cp (bool): Activation checkpointing in every block. Defaults to False.
        drop_path_rate (float): Stochastic depth, rising linearly from 0 at the first block to
            this rate at the last, as in mmpretrain's ResNet. Defaults to 0.
        init_cfg (dict | list[dict], optional): mmengine init config. Defaults to the original's
            initialisation: Kaiming-normal (fan-out) convs, unit norm weights.
        **mmpretrain_args: mmpretrain's ResNeSt arguments (``stem_channels``, ``num_stages``,
            ``style``, ``avg_down_stride``, ``width_per_group`` ...), mapped to the above or
            refused: see :mod:`resnest_mm.models.backbones.mmpretrain_args`.
    """

    # depth -> blocks per stage. Not annotated: torch 2.1's TorchScript reads class annotations
    # and fails on the string ones ``from __future__ import annotations`` makes.
    arch_settings = {
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
        200: (3, 24, 36, 3),
        269: (3, 30, 48, 8),
    }
    # mmengine's BaseModule.is_init property is not scriptable; TorchScript skips it.
    __jit_unused_properties__ = ['is_init']

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_width: Optional[int] = None,
                 radix: int = 2,
                 groups: int = 1,
                 base_width: int = 64,
                 avd: bool = True,
                 avd_first: bool = False,
                 reduction_factor: int = 4,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 norm_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 zero_init_residual: Optional[bool] = None,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 init_cfg: Optional[dict] = None,
                 **mmpretrain_args) -> None:
        if mmpretrain_args:
            mapped = from_mmpretrain_args(mmpretrain_args, dict(
                stem_width=stem_width, avd=avd, groups=groups, base_width=base_width))
            stem_width = mapped.get('stem_width', stem_width)
            avd = mapped.get('avd', avd)
            base_width = mapped.get('base_width', base_width)
        if zero_init_residual is None:
            zero_init_residual = bool(mmpretrain_args)  # mmpretrain's ResNet default: True
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
                     distribution='normal'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ExplainedKeyError(f'ResNeSt depth={depth} is not one of '
                           f'{sorted(self.arch_settings)}; set backbone.depth to one of them.')
        out_indices = [int(i) for i in out_indices]
        if not out_indices or any(not 0 <= i <= 3 for i in out_indices):
            raise ExplainedValueError(f'backbone.out_indices={out_indices} must name stages '
                                      'in 0..3 (0 is the first stage)')
        if not -1 <= frozen_stages <= 4:
            raise ExplainedValueError(f'backbone.frozen_stages={frozen_stages} must be in -1..4 '
                                      '(-1: nothing frozen, 0: the stem, i: stem + stages 1..i)')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        stem_width = stem_width or (32 if depth == 50 else 64)

        self.depth = depth
        self.out_indices: List[int] = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual

        # Deep stem: three 3x3 convs; the last BN is ``bn1`` as in the original.
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 3, stride=2, padding=1, bias=False),
            build_norm_layer(norm_cfg, stem_width)[1],
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width, 3, stride=1, padding=1, bias=False),
            build_norm_layer(norm_cfg, stem_width)[1],
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width * 2, 3, stride=1, padding=1, bias=False),
        )
        self.bn1 = build_norm_layer(norm_cfg, stem_width * 2)[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        block_args = dict(radix=radix, groups=groups, base_width=base_width, avd=avd,
                          avd_first=avd_first, reduction_factor=reduction_factor,
                          norm_cfg=norm_cfg, with_cp=with_cp)
        blocks_per_stage = self.arch_settings[depth]
        # stochastic depth grows linearly over the blocks, as in mmpretrain's ResNet
        rates = torch.linspace(0, drop_path_rate, sum(blocks_per_stage)).tolist()
        in_ch = stem_width * 2
        stages = []
        for i, num_blocks in enumerate(blocks_per_stage):
            planes = 64 * 2**i
            stage = self._make_stage(in_ch, planes, num_blocks, stride=1 if i == 0 else 2,
                                     is_first=i > 0, norm_cfg=norm_cfg, block_args=block_args,
                                     drop_path_rates=rates[:num_blocks])
            rates = rates[num_blocks:]
            self.add_module(f'layer{i + 1}', stage)
            stages.append(stage)
            in_ch = planes * ResNeStBottleneck.expansion
        self.feat_dim = in_ch
        register_load_state_dict_pre_hook(self, _whole_or_nothing)
        self._freeze_stages()

    @staticmethod
    def _make_stage(in_ch: int, planes: int, num_blocks: int, stride: int, is_first: bool,
                    norm_cfg: dict, block_args: dict,
                    drop_path_rates: Sequence[float]) -> nn.Sequential:
        out_ch = planes * ResNeStBottleneck.expansion
        downsample = None
        if stride != 1 or in_ch != out_ch:
            # avg_down shortcut; the stride-1 pool of the original is an Identity here, keeping
            # the conv at index 1 and the norm at index 2 as in its state dict.
            pool: nn.Module = nn.AvgPool2d(stride, stride, ceil_mode=True,
                                           count_include_pad=False) if stride > 1 \
                else nn.Identity()
            downsample = nn.Sequential(pool, nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                       build_norm_layer(norm_cfg, out_ch)[1])
        blocks = [ResNeStBottleneck(in_ch, planes, stride, downsample, is_first=is_first,
                                    drop_path_rate=drop_path_rates[0], **block_args)]
        blocks += [ResNeStBottleneck(out_ch, planes, drop_path_rate=drop_path_rates[b],
                                     **block_args) for b in range(1, num_blocks)]
        return nn.Sequential(*blocks)

    def _stages(self) -> List[nn.Module]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def _freeze_stages(self) -> None:
        frozen: List[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen += [self.conv1, self.bn1]
        frozen += self._stages()[:max(self.frozen_stages, 0)]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        super().init_weights()
        if self.zero_init_residual:
            for module in self.modules():
                if isinstance(module, ResNeStBottleneck):
                    nn.init.zeros_(module.bn3.weight)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the outputs of the stages in ``out_indices``, as a tuple (mmpretrain's
        necks take tuples)."""
        return tuple(self.forward_stages(x))

    def __prepare_scriptable__(self) -> ResNeSt:
        # TorchScript has no variable-length tuples: ``torch.jit.script`` compiles a view of this
        # module (same parameters) whose forward returns the list of stage outputs.
        scriptable = copy.copy(self)
        scriptable.__class__ = _ScriptableResNeSt
        return scriptable

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Return the outputs of the stages in ``out_indices``, as a list (TorchScript entry)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs: List[torch.Tensor] = []
        x = self.layer1(x)
        if 0 in self.out_indices:
            outs.append(x)
        x = self.layer2(x)
        if 1 in self.out_indices:
            outs.append(x)
        x = self.layer3(x)
        if 2 in self.out_indices:
            outs.append(x)
        x = self.layer4(x)
        if 3 in self.out_indices:
            outs.append(x)
        return outs

    def train(self, mode: bool = True) -> ResNeSt:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def _whole_or_nothing(module: ResNeSt, state_dict: dict, prefix: str, *_) -> None:
    """Refuse weights that would load only part of the backbone (``load_state_dict`` pre-hook).

    What torch and mmengine lack: a non-strict load (mmengine's ``load_checkpoint``, so
    mmpretrain's ``get_model``/``init_model``/inferencer) fills what matches and leaves the rest
    random, with a warning among many; mmpretrain's ResNeSt weights (``stem.*``) load 453 of
    476 tensors of ours that way. Weights that name none of the backbone's tensors are left to
    the loader (a checkpoint of another part of the model).
    """
    if not any(key.startswith(prefix) for key in state_dict):
        return
    needed = [prefix + key for key in module.state_dict(keep_vars=True)
              if not key.endswith('num_batches_tracked')]  # (torch fills those in)
    missing = [key for key in needed if key not in state_dict]
    if not missing:
        return
    hint = ('they are mmpretrain\'s ResNeSt layout: convert them with '
            'tools/model_converters/resnest_to_mm.py, or load them through a resnest_mm tool '
            '(load_from converts them)') if prefix + 'stem.0.conv.weight' in state_dict \
        else 'check that the checkpoint is of this network (depth, widths, radix)'
    raise ExplainedValueError(
        f'the weights hold {len(needed) - len(missing)} of the {len(needed)} tensors of '
        f'resnest_mm\'s ResNeSt{f" ({prefix[:-1]})" if prefix else ""} (missing e.g. '
        f'{missing[0]}); a backbone is loaded whole or not at all: {hint}.')


class _ScriptableResNeSt(ResNeSt):
    """What ``torch.jit.script(ResNeSt(...))`` compiles: forward returns a list."""

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:  # type: ignore[override]
        return self.forward_stages(x)
