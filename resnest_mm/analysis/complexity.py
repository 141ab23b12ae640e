"""FLOPs and parameters of a config's classifier, as ``tools/analysis_tools/get_flops.py`` prints.

Built on MMEngine's ``get_model_complexity_info`` (fvcore's counting: one multiply-add is one
FLOP, the convention of the ResNeSt paper's 5.4 GFLOPs for ResNeSt-50 at 224).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config

from ..apis.export import LogitsModel, input_size
from ..apis.inference import init_model


def model_complexity(config: Union[str, Config],
                     size: Optional[Tuple[int, int]] = None,
                     show_table: bool = False) -> dict:
    """Count the classifier's FLOPs (multiply-adds) and parameters for one image.

    Args:
        config: A config file or Config.
        size: ``(height, width)``; the config's test crop when None.
        show_table: Also return MMEngine's per-module table.

    Returns:
        ``flops`` and ``params`` (ints), their readable forms ``flops_str`` / ``params_str``,
        ``input_shape`` and, with ``show_table``, ``table``.
    """
    model = init_model(config, device='cpu')
    height, width = size or input_size(model.cfg)
    wrapper = LogitsModel(model).eval()
    with torch.no_grad():
        info = get_model_complexity_info(wrapper, inputs=(torch.zeros(1, 3, height, width), ),
                                         show_table=show_table, show_arch=False)
    result = dict(flops=int(info['flops']), params=int(info['params']),
                  flops_str=info['flops_str'], params_str=info['params_str'],
                  input_shape=(1, 3, height, width))
    if show_table:
        result['table'] = info['out_table']
    return result
