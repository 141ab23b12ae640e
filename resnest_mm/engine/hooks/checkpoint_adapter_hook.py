"""Make a checkpoint fit the model before mmengine loads it: layout and classifier size."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...models.utils import convert_state_dict, detect_format
from ...registry import HOOKS

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
            raise ValueError(f'CheckpointAdapterHook.head_mismatch={head_mismatch!r} must be one '
                             f'of {HEAD_MODES}')
        self.head_mismatch = head_mismatch

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = runner.cfg.get('load_from') or 'the checkpoint'
        nested = isinstance(checkpoint.get('state_dict'), dict)
        state_dict = checkpoint['state_dict'] if nested else checkpoint
        try:
            fmt = detect_format(state_dict)
        except ValueError as exc:
            raise ValueError(f'{source}: {exc} To convert a ResNeSt checkpoint, run '
                             'tools/model_converters/resnest_to_mm.py SRC DST.') from None
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = getattr(getattr(model, 'head', None), 'fc', None)
        num_classes = head.out_features if head is not None else None
        converted, info = convert_state_dict(state_dict, fmt, num_classes=None)
        if fmt != 'resnest_mm':
            runner.logger.info(f'{source} is a {fmt} checkpoint: converted to resnest_mm keys.')
        ckpt_classes = info['num_classes']
        if num_classes is not None and ckpt_classes is not None and ckpt_classes != num_classes:
            if self.head_mismatch == 'error':
                raise ValueError(
                    f'{source} has a {ckpt_classes}-class classifier but the config builds '
                    f'{num_classes} classes. To evaluate it, set model.head.num_classes='
                    f'{ckpt_classes} (e.g. --cfg-options model.head.num_classes={ckpt_classes}) '
                    'and a dataset with those classes; to fine-tune it to the new classes, use '
                    "CheckpointAdapterHook(head_mismatch='reinit') as the finetune config does.")
            converted = {k: v for k, v in converted.items() if not k.startswith('head.fc.')}
            runner.logger.info(f'{source} has a {ckpt_classes}-class classifier, the model has '
                               f'{num_classes}: the classifier is re-initialised, the rest '
                               'is loaded.')
        if nested:
            checkpoint['state_dict'] = converted
        else:
            checkpoint.clear()
            checkpoint.update(converted)
