"""``get_model`` and ``list_models``: resnest_mm's models by name, with their released weights.

What mmpretrain lacks for us: ``mmpretrain.get_model`` knows only mmpretrain's names, builds in
scope ``mmpretrain`` (``ResNeSt`` would be mmpretrain's network) and loads weights non-strictly
with mmengine's unpickler. Here a name of our model index builds our config's classifier, and
``pretrained`` weights are downloaded once (hash checked), read as data, converted from their
layout and loaded strictly, through :func:`resnest_mm.apis.init_model`.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from mmengine.config import Config

from ..hub import list_models, model_info, weights_url
from .inference import init_model

__all__ = ['get_model', 'list_models']


def get_model(name: str,
              pretrained: Union[bool, str] = False,
              device: Optional[str] = None,
              **kwargs) -> torch.nn.Module:
    """Build a model of the index by name, optionally with weights.

    Args:
        name: A name :func:`list_models` lists (case-insensitive), e.g. ``'resnest50'``.
        pretrained: ``True`` loads the model's released weights (downloaded once into
            ``torch.hub.get_dir()/checkpoints``, SHA-256 checked, converted to our layout);
            a path, URL or another model name loads those weights; ``False`` keeps the
            initial weights. Defaults to False.
        device: ``'cpu'``, ``'cuda:0'``, ``'npu:0'`` ...; the best device present when None.
        **kwargs: Overrides of the model config, merged as ``mmpretrain.get_model`` merges its
            keyword arguments (``head=dict(num_classes=10)``,
            ``backbone=dict(out_indices=(0, 1, 2, 3))``).

    Returns:
        The ``ImageClassifier`` in eval mode (see :func:`resnest_mm.apis.init_model`).

    Raises:
        ExplainedKeyError: an unknown name (the message names the closest).
        ExplainedValueError: ``pretrained=True`` for a model without released weights.
        WeightsHashError: the downloaded file is not the one the index lists.
    """
    info = model_info(name)
    cfg = Config.fromfile(info.config)
    if kwargs:
        cfg.merge_from_dict(dict(model=kwargs))
    if pretrained is True:
        weights_url(info.name)  # refuses a model without weights, before any download
        checkpoint = info.name
    else:
        checkpoint = pretrained or None
    model = init_model(cfg, checkpoint, device=device)
    model.model_name = info.name
    return model
