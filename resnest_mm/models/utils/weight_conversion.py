"""Convert ResNeSt weights between resnest_mm's layout and the original package's, timm's and
mmpretrain's, both ways.

resnest_mm's ``ImageClassifier`` keys are ``backbone.<original name>`` and ``head.fc.*``. The
original package (``resnest.torch``, the official release) and timm (``resnest50d`` ...,
``resnest101e`` ...) share the original names (``conv1.0``, ``layer1.0.conv2.fc1``, ``fc``), so
they only gain prefixes. mmpretrain names the stem ``stem.{0,1,2}.{conv,bn}`` and has no
stride-1 pool in the first shortcut, so its stem and ``layer1.0.downsample`` are renamed.
:func:`convert_state_dict` reads any of them into ours; :func:`export_state_dict` writes ours
into any of them.

Files are read by :func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file` (weights only, an
explicit allow-list, the digest verified when there is one): a file that would run code when
unpickled is refused. Converted checkpoints are written atomically, with a SHA-256 beside them.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional, Tuple

import torch
from mmengine.logging import print_log

from ...utils.checkpoint_io import load_checkpoint_file
from ...utils.errors import ExplainedValueError
from ...utils.fileio import atomic_save

FORMATS = ('official', 'timm', 'mmpretrain', 'resnest_mm')
# mmpretrain stem -> original stem (the third BN is the original's top-level ``bn1``).
_MMPRETRAIN_STEM = {
    'stem.0.conv.': 'conv1.0.', 'stem.0.bn.': 'conv1.1.',
    'stem.1.conv.': 'conv1.3.', 'stem.1.bn.': 'conv1.4.',
    'stem.2.conv.': 'conv1.6.', 'stem.2.bn.': 'bn1.',
}
_TO_MMPRETRAIN_STEM = {new: old for old, new in _MMPRETRAIN_STEM.items()}
# the shortcut of a stage's first block: (prefix, index in the Sequential, rest)
_SHORTCUT = re.compile(r'(layer\d+\.0\.downsample\.)(\d)(\..*)')
_WRAPPER_KEYS = ('state_dict', 'model', 'state_dict_ema', 'model_ema')

StateDict = Dict[str, torch.Tensor]


def load_weights(path: str, unsafe: bool = False) -> StateDict:
    """Read a weight file safely and return its flat state dict.

    Unwraps ``{'state_dict': ...}``/``{'model': ...}`` containers and a DDP ``module.`` prefix.

    Args:
        path: The file.
        unsafe: Unpickle what is not plain data (``--unsafe-load``; only for trusted files).

    Raises:
        ExplainedFileNotFoundError: the file does not exist.
        CheckpointError: the file is damaged, truncated or not plain data.
        ExplainedValueError: the file holds no tensors.
    """
    obj = load_checkpoint_file(path, map_location='cpu', unsafe=unsafe)
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ExplainedValueError(
            f'{path} holds no state dict (found {type(obj).__name__}); expected a dict of '
            'tensors, possibly under "state_dict" or "model".')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in obj.items() if isinstance(v, torch.Tensor))


def detect_format(state_dict: StateDict) -> str:
    """Tell which layout a ResNeSt state dict uses: one of :data:`FORMATS`.

    The original and timm layouts are identical; both are reported as ``official``.

    Raises:
        ValueError: the keys are not a ResNeSt of any known layout.
    """
    keys = set(state_dict)
    if 'backbone.conv1.0.weight' in keys:
        return 'resnest_mm'
    if 'backbone.stem.0.conv.weight' in keys or 'stem.0.conv.weight' in keys:
        return 'mmpretrain'
    if 'conv1.0.weight' in keys and any(k.endswith('conv2.fc1.weight') for k in keys):
        return 'official'
    sample = ', '.join(sorted(keys)[:5])
    raise ExplainedValueError(
        f'these weights are not a ResNeSt of the original package, timm, mmpretrain or '
        f'resnest_mm (first keys: {sample}); pass --format if you know the layout.')


def _mmpretrain_key(key: str, to_mmpretrain: bool, pool_free: Callable[[str], bool]) -> str:
    """A bare backbone key renamed between mmpretrain's names and the original's, either way:
    the stem, and the shortcut of a stage whose first block has no pool in mmpretrain
    (``pool_free(prefix)``, layer1's stride 1), where conv and norm sit one index lower."""
    for old, new in (_TO_MMPRETRAIN_STEM if to_mmpretrain else _MMPRETRAIN_STEM).items():
        if key.startswith(old):
            key = new + key[len(old):]
            break
    match = _SHORTCUT.match(key)
    if match and pool_free(match.group(1)):
        key = f'{match.group(1)}{int(match.group(2)) + (-1 if to_mmpretrain else 1)}' \
            f'{match.group(3)}'
    return key


def _from_mmpretrain(state_dict: StateDict) -> StateDict:
    bare = {k[len('backbone.'):] if k.startswith('backbone.') else k for k in state_dict}
    # a shortcut whose index 0 holds weights (a conv, not a pool) has no pool
    return OrderedDict(
        (_mmpretrain_key(key[len('backbone.'):] if key.startswith('backbone.') else key, False,
                         lambda prefix: f'{prefix}0.weight' in bare), value)
        for key, value in state_dict.items())


def convert_state_dict(state_dict: StateDict,
                       fmt: Optional[str] = None,
                       num_classes: Optional[int] = None) -> Tuple[StateDict, dict]:
    """Convert a ResNeSt state dict to resnest_mm's ``ImageClassifier`` keys.

    Args:
        state_dict (dict): Weights in the original/official, timm, mmpretrain or resnest_mm
            layout.
        fmt (str, optional): One of :data:`FORMATS`; detected from the keys when None.
        num_classes (int, optional): Class count of the target model. When it differs from
            the weights', the classifier is dropped (with a message) and the backbone kept.

    Returns:
        tuple: the converted state dict, and a dict with ``format``, ``num_classes`` (of the
        weights) and ``head_dropped``.
    """
    fmt = fmt or detect_format(state_dict)
    if fmt not in FORMATS:
        raise ExplainedValueError(
            f'unknown weight format {fmt!r}; choose one of {", ".join(FORMATS)}')
    if fmt == 'resnest_mm':
        flat = OrderedDict(state_dict)
    else:
        src = _from_mmpretrain(state_dict) if fmt == 'mmpretrain' else state_dict
        flat = OrderedDict()
        for key, value in src.items():
            if key.startswith(('fc.', 'head.fc.')):
                flat['head.fc.' + key.split('fc.', 1)[1]] = value
            else:
                flat['backbone.' + key] = value
    if 'backbone.conv1.0.weight' not in flat:
        raise ExplainedValueError(f'no ResNeSt stem found after reading the weights as '
                                  f'{fmt!r}; check --format.')
    head_classes = flat['head.fc.weight'].shape[0] if 'head.fc.weight' in flat else None
    dropped = head_classes is not None and num_classes is not None \
        and head_classes != num_classes
    if dropped:
        print_log(f'Weights have a {head_classes}-class classifier, the model has '
                  f'{num_classes} classes: dropping head.fc (it will be trained from scratch).',
                  logger='current')
        flat = OrderedDict((k, v) for k, v in flat.items() if not k.startswith('head.fc.'))
    return flat, dict(format=fmt, num_classes=head_classes, head_dropped=dropped)


def convert_checkpoint(src: str,
                       dst: str,
                       fmt: Optional[str] = None,
                       num_classes: Optional[int] = None,
                       unsafe: bool = False) -> dict:
    """Read ``src`` (any supported layout), write a resnest_mm checkpoint to ``dst``.

    The result loads as ``load_from`` in our configs and as ``tools/test.py CONFIG dst``.

    Returns:
        dict: what :func:`convert_state_dict` reports, plus ``src`` and ``dst``.
    """
    state_dict, info = convert_state_dict(load_weights(src, unsafe=unsafe), fmt, num_classes)
    info = dict(info, src=os.path.abspath(src), dst=os.path.abspath(dst))
    meta = dict(converted_from=info['format'], source=info['src'],
                num_classes=None if info['head_dropped'] else info['num_classes'])
    atomic_save(dict(state_dict=state_dict, meta=meta), dst, digest=True)
    return info


EXPORT_FORMATS = ('official', 'timm', 'mmpretrain')


def export_state_dict(state_dict: StateDict, fmt: str) -> StateDict:
    """Convert resnest_mm ``ImageClassifier`` weights to another layout.

    Args:
        state_dict (dict): Weights in our layout (``backbone.*``, ``head.fc.*``), as our
            checkpoints hold them.
        fmt (str): ``'official'`` or ``'timm'`` (bare original names, classifier ``fc.*``: what
            ``resnest.torch.resnest50()`` and ``timm.create_model('resnest50d')`` load), or
            ``'mmpretrain'`` (what mmpretrain's ``ImageClassifier`` with its ``ResNeSt`` loads).

    Returns:
        dict: The converted state dict; it loads strictly into the target model.

    Raises:
        ExplainedValueError: ``fmt`` is unknown, or the weights are not resnest_mm's ResNeSt.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExplainedValueError(
            f'unknown target format {fmt!r}; choose one of {", ".join(EXPORT_FORMATS)}')
    found = detect_format(state_dict)
    if found != 'resnest_mm':
        raise ExplainedValueError(
            f'these weights are in the {found} layout, not resnest_mm\'s; convert them to '
            'resnest_mm first (tools/model_converters/resnest_to_mm.py), or use them as they '
            'are.')
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            out[key if fmt == 'mmpretrain' else 'fc.' + key[len('head.fc.'):]] = value
            continue
        if not key.startswith('backbone.'):
            raise ExplainedValueError(
                f'weight {key!r} belongs to neither the backbone nor the linear head; only a '
                'ResNeSt with a LinearClsHead can be exported.')
        key = key[len('backbone.'):]
        if fmt == 'mmpretrain':  # mmpretrain has no stride-1 pool in layer1's shortcut
            key = 'backbone.' + _mmpretrain_key(
                key, True, lambda prefix: prefix == 'layer1.0.downsample.')
        out[key] = value
    return out


def export_checkpoint(src: str, dst: str, fmt: str = 'mmpretrain',
                      unsafe: bool = False) -> dict:
    """Read a resnest_mm checkpoint ``src``, write its weights in layout ``fmt`` to ``dst``.

    mmpretrain's file holds ``{'state_dict': ..., 'meta': ...}`` (what its ``load_checkpoint``,
    ``get_model(..., pretrained=dst)`` and ``tools/test.py`` read); the original's and timm's
    a plain state dict (what ``model.load_state_dict(torch.load(dst))`` takes).

    Returns:
        dict: ``src``, ``dst``, ``format`` and ``num_classes`` (None without a classifier).
    """
    state_dict = export_state_dict(load_weights(src, unsafe=unsafe), fmt)
    head = state_dict.get('head.fc.weight', state_dict.get('fc.weight'))
    info = dict(src=os.path.abspath(src), dst=os.path.abspath(dst), format=fmt,
                num_classes=None if head is None else head.shape[0])
    obj = dict(state_dict=state_dict, meta=dict(converted_from='resnest_mm',
                                                source=info['src'])) \
        if fmt == 'mmpretrain' else state_dict
    atomic_save(obj, dst, digest=True)
    return info
