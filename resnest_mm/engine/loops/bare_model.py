"""``bare_model``: the network whose keys a checkpoint holds."""
from __future__ import annotations

from mmengine.model import BaseTTAModel, is_model_wrapper
from torch import nn


def bare_model(model: nn.Module) -> nn.Module:
    """``model`` without a distributed wrapper and without a test-time-augmentation wrapper
    (``AverageClsScoreTTA``, ``--tta``), whose keys gain a ``module.`` prefix that no checkpoint
    has (mmengine's ``load_state_dict`` unwraps both the same way)."""
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    return model
