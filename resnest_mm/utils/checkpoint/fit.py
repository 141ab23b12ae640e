"""``check_fits``: weights load whole or not at all."""
from __future__ import annotations

from typing import Any, Dict

from ..errors import ExplainedValueError


def check_fits(own: Dict[str, Any], state_dict: Dict[str, Any], source: str,
               allowed_missing: tuple = ()) -> None:
    """Refuse weights whose keys or shapes do not fit a model, naming the first of each kind.

    A partial load (mmengine's default: warn and go on) would evaluate or train a network that
    is partly random. ``num_batches_tracked`` buffers may be missing (older checkpoints), and
    keys under ``allowed_missing`` prefixes (a classifier that fine-tuning re-initialises).

    Args:
        own: The model's ``state_dict()``.
        state_dict: The weights to load (already converted and prefix-stripped).
        source: The file, for the message.
        allowed_missing: Key prefixes the checkpoint may lack.

    Raises:
        ExplainedValueError: missing, unexpected or mis-shaped keys.
    """
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')
               and not k.startswith(tuple(allowed_missing))]
    unexpected = [k for k in state_dict if k not in own]
    resized = [f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}' for k, v in state_dict.items()
               if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape)]
    if not (missing or unexpected or resized):
        return
    problems = [f'{len(keys)} {name} ({", ".join(keys[:3])}{", ..." if len(keys) > 3 else ""})'
                for name, keys in (('missing', missing), ('unexpected', unexpected),
                                   ('of another shape (checkpoint vs model)', resized))
                if keys]
    raise ExplainedValueError(
        f'{source} does not fit the model of this config: keys {"; ".join(problems)}. Nothing '
        'was loaded. Use the config it was trained with (its depth, class count and layout), '
        'or convert it with tools/model_converters/resnest_to_mm.py.')
