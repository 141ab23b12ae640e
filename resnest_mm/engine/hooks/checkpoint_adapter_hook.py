"""Make a checkpoint fit the model before mmengine loads it: layout and classifier size."""
from __future__ import annotations

from mmengine.hooks import Hook

from ...models.utils import convert_state_dict, detect_format
from ...registry import HOOKS
from ...utils.errors import ExplainedValueError
from ..loops import bare_model

HEAD_MODES = ('error', 'reinit')


@HOOKS.register_module()
class CheckpointAdapterHook(Hook):
    """Adapt ``load_from`` / test / resume checkpoints to the model being run.

    mmengine loads ``load_from`` non-strictly: a checkpoint in another layout loads *nothing*
    and a classifier of another size stays random, each with only a warning among many. This
    hook runs on ``after_load_checkpoint`` (before the weights reach the model) and

    * converts ResNeSt weights of the original package, timm or mmpretrain to our layout
      (:func:`resnest_mm.models.utils.convert_state_dict`), saying so;
    * refuses weights it cannot read as a ResNeSt, naming the converter;
    * when the checkpoint's classifier has another class count than ``model.head``:
      ``head_mismatch='reinit'`` (fine-tuning) drops it, so the head keeps its fresh
      initialisation; ``'error'`` (testing) stops with a sentence saying how to fix it.

    Args:
        head_mismatch (str): ``'error'`` or ``'reinit'``. Defaults to ``'error'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, head_mismatch: str = 'error') -> None:
        if head_mismatch not in HEAD_MODES:
            raise ExplainedValueError(
                f'CheckpointAdapterHook.head_mismatch={head_mismatch!r} must be one '
                f'of {HEAD_MODES}')
        self.head_mismatch = head_mismatch

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = runner.cfg.get('load_from') or 'the checkpoint'
        nested = isinstance(checkpoint.get('state_dict'), dict)
        state_dict = checkpoint['state_dict'] if nested else checkpoint
        model = bare_model(runner.model)
        own = model.state_dict()
        if all(k in own and getattr(v, 'shape', None) == own[k].shape
               for k, v in state_dict.items() if k != '_metadata'):
            return  # already fits this model (our own checkpoints, any backbone): as it is
        try:
            fmt = detect_format(state_dict)
        except ValueError as exc:
            raise ExplainedValueError(f'{source}: {exc} To convert a ResNeSt checkpoint, run '
                                      'tools/model_converters/resnest_to_mm.py SRC DST.') from None
        head = getattr(getattr(model, 'head', None), 'fc', None)
        num_classes = head.out_features if head is not None else None
        # In 'reinit' mode convert_state_dict drops a classifier of another size (and says so).
        reinit = self.head_mismatch == 'reinit'
        converted, info = convert_state_dict(state_dict, fmt,
                                             num_classes=num_classes if reinit else None)
        if fmt != 'resnest_mm':
            runner.logger.info(f'{source} is a {fmt} checkpoint: converted to resnest_mm keys.')
        ckpt_classes = info['num_classes']
        if not reinit and None not in (num_classes, ckpt_classes) and ckpt_classes != num_classes:
            raise ExplainedValueError(
                f'{source} has a {ckpt_classes}-class classifier but the config builds '
                f'{num_classes} classes. To evaluate it, set model.head.num_classes='
                f'{ckpt_classes} (e.g. --cfg-options model.head.num_classes={ckpt_classes}) '
                'and a dataset with those classes; to fine-tune it to the new classes, use '
                "CheckpointAdapterHook(head_mismatch='reinit') as the finetune config does.")
        if nested:
            checkpoint['state_dict'] = converted
        else:
            checkpoint.clear()
            checkpoint.update(converted)
