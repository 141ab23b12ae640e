"""mmpretrain's ResNeSt arguments, read as resnest_mm's.

mmpretrain 1.2's ``ResNeSt`` (a ``ResNetV1d``, ``mmpretrain/models/backbones/resnest.py`` and
``resnet.py``) takes ResNet's arguments. A config written for it that names our ``ResNeSt``
instead must build the same network, or stop: mmpretrain's ``stem_channels=64`` is the output
width of the deep stem, our ``stem_width=32`` the width of its first two convs, so copying the
number across would silently double the stem. :func:`from_mmpretrain_args` maps each argument
mmpretrain's ResNeSt accepts to ours, or refuses it in one sentence that names our equivalent.

=====================  =====================================================================
mmpretrain             resnest_mm
=====================  =====================================================================
``stem_channels=C``    ``stem_width=C // 2``
``avg_down_stride``    ``avd``
``width_per_group``    ``base_width`` (when ``groups > 1``; mmpretrain ignores it otherwise)
``drop_path_rate``     ``drop_path_rate`` (the same linear rule over all blocks)
``zero_init_residual`` the same; its default follows mmpretrain's (True) when mmpretrain
                       arguments are given
``deep_stem=True``     always (a ResNeSt has the deep stem); False is refused
``avg_down=True``      always (average-pool shortcut); False is refused
``num_stages=4``       always (choose outputs with ``out_indices``); other values refused
``strides``            ``(1, 2, 2, 2)`` only
``dilations``          ``(1, 1, 1, 1)`` only (``contract_dilation`` False only)
``style='pytorch'``    only (``'caffe'`` strides the 1x1 conv: another network)
``base_channels=64``   only (the stage widths are 64, 128, 256, 512)
``expansion=4``        only
``conv_cfg``           ``None`` or ``dict(type='Conv2d')`` only
``act_cfg``            ``None`` or ``dict(type='ReLU')`` only
=====================  =====================================================================

``depth``, ``in_channels``, ``groups``, ``radix``, ``reduction_factor``, ``out_indices``,
``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``with_cp`` and ``init_cfg`` have the same name
and meaning in both.
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, Optional

from ...utils.errors import ExplainedKeyError, ExplainedValueError

# argument -> (the only value(s) we build, what to do instead)
_FIXED: Dict[str, tuple] = {
    'deep_stem': ((True, ), 'a ResNeSt always has the 3-conv deep stem; drop the argument'),
    'avg_down': ((True, ), 'a ResNeSt always has the average-pool shortcut; drop the argument'),
    'num_stages': ((4, ), 'our ResNeSt always builds 4 stages; choose the returned stages with '
                   'out_indices'),
    'strides': (((1, 2, 2, 2), ), 'the stage strides are fixed at (1, 2, 2, 2); drop the '
                'argument'),
    'dilations': (((1, 1, 1, 1), ), 'dilated stages are not built; drop the argument'),
    'contract_dilation': ((False, ), 'dilated stages are not built; drop the argument'),
    'style': (('pytorch', ), "only style='pytorch' (the stride on the 3x3 conv) is built; drop "
              'the argument'),
    'base_channels': ((64, ), 'the stage widths are fixed at 64, 128, 256, 512; set the '
                      'bottleneck width with base_width'),
    'expansion': ((4, ), 'the bottleneck expansion is fixed at 4; drop the argument'),
}
# Our arguments of the same name and meaning (for the suggestion of an unknown name).
_SAME = ('depth', 'in_channels', 'groups', 'radix', 'reduction_factor', 'out_indices',
         'frozen_stages', 'norm_cfg', 'norm_eval', 'with_cp', 'init_cfg', 'zero_init_residual')
MMPRETRAIN_ARGS = tuple(_FIXED) + ('stem_channels', 'avg_down_stride', 'width_per_group',
                                   'conv_cfg', 'act_cfg')


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _type_of(cfg: Any) -> Optional[str]:
    return cfg.get('type') if isinstance(cfg, dict) else cfg


def from_mmpretrain_args(args: Dict[str, Any], ours: Dict[str, Any]) -> Dict[str, Any]:
    """Translate mmpretrain ResNeSt arguments into resnest_mm ``ResNeSt`` arguments.

    Args:
        args (dict): The arguments our signature does not have (mmpretrain's, or misspelt).
        ours (dict): Our arguments as given, to detect one setting given both ways
            (``stem_width`` with ``stem_channels``, ``base_width`` with ``width_per_group``,
            ``avd`` with ``avg_down_stride``).

    Returns:
        dict: Our arguments that replace those in ``ours``.

    Raises:
        ExplainedKeyError: an argument neither we nor mmpretrain's ResNeSt have (our former
            ``channels_last`` included: the runner reads it at the top level now).
        ExplainedValueError: an mmpretrain value that builds another network than ours can.
    """
    out: Dict[str, Any] = {}
    for name, value in args.items():
        if name in _FIXED:
            allowed, instead = _FIXED[name]
            if _plain(value) not in allowed:
                raise ExplainedValueError(
                    f'backbone.{name}={value!r} (an mmpretrain argument) builds a network '
                    f'resnest_mm\'s ResNeSt does not: {instead}.')
        elif name == 'stem_channels':
            if value % 2:
                raise ExplainedValueError(
                    f'backbone.stem_channels={value} must be even: it is the deep stem\'s '
                    f'output width, twice our stem_width; set stem_width={value // 2 or 1} '
                    'instead.')
            if ours.get('stem_width') not in (None, value // 2):
                raise ExplainedValueError(
                    f'backbone.stem_channels={value} (mmpretrain) means stem_width='
                    f'{value // 2}, but stem_width={ours["stem_width"]} is set too; keep one.')
            out['stem_width'] = value // 2
        elif name == 'avg_down_stride':
            if ours.get('avd', True) is not True and bool(value) != ours['avd']:
                raise ExplainedValueError(
                    f'backbone.avg_down_stride={value} (mmpretrain) is our avd, but avd='
                    f'{ours["avd"]} is set too; keep one.')
            out['avd'] = bool(value)
        elif name == 'width_per_group':
            # mmpretrain: mid = groups * width_per_group * planes // 64 when groups > 1, else
            # planes; ours: int(planes * base_width / 64) * groups.
            if ours.get('groups', 1) == 1:
                continue
            if ours.get('base_width', 64) not in (64, value):
                raise ExplainedValueError(
                    f'backbone.width_per_group={value} (mmpretrain) is our base_width, but '
                    f'base_width={ours["base_width"]} is set too; keep one.')
            out['base_width'] = value
        elif name == 'conv_cfg':
            if _type_of(value) not in (None, 'Conv2d', 'Conv'):
                raise ExplainedValueError(
                    f'backbone.conv_cfg={value!r}: resnest_mm\'s ResNeSt builds plain Conv2d '
                    'layers only; drop conv_cfg.')
        elif name == 'act_cfg':
            if _type_of(value) not in (None, 'ReLU'):
                raise ExplainedValueError(
                    f'backbone.act_cfg={value!r}: resnest_mm\'s ResNeSt uses ReLU only; drop '
                    'act_cfg.')
        elif name == 'channels_last':  # our own argument until the runner took it over
            raise ExplainedKeyError(
                f'backbone.channels_last={value!r} is no longer read: the memory format is the '
                f'top-level config key channels_last (channels_last = {value!r}, what '
                'tools/train.py --channels-last sets); move it there.')
        else:
            known = sorted(set(MMPRETRAIN_ARGS) | set(_SAME) | set(ours))
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean {close[0]!r}?)' if close else ''
            raise ExplainedKeyError(
                f'backbone.{name} is not an argument of resnest_mm\'s ResNeSt nor of '
                f'mmpretrain\'s{hint}; see docs/migrating.md for the arguments.')
    return out
