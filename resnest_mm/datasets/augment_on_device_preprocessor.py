"""``AugmentOnDevicePreprocessor``: uint8 batches, and the augmentation the workers drew, finished
on the device."""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmpretrain.datasets.transforms.formatting import PackInputs
from mmpretrain.models.utils.data_preprocessor import ClsDataPreprocessor

from ..registry import MODELS
from ..utils.errors import ExplainedValueError
from .transforms.fast_lighting import LIGHTING_KEY
from .transforms.pack_for_device import PACK_TYPES


@MODELS.register_module()
class AugmentOnDevicePreprocessor(ClsDataPreprocessor):
    """mmpretrain's ``ClsDataPreprocessor`` that also adds each sample's PCA lighting noise.

    What mmpretrain lacks: its ``Lighting`` (and a CPU ``FastLighting``) adds the noise in the
    loader worker, which turns each uint8 image into float32: four times the bytes to collate,
    pass between processes, pin and copy to the accelerator, and one more pass over every pixel
    on the CPU. With ``FastLighting(on_device=True)`` the worker only draws the noise (same draw,
    same seed) and hands the uint8 image on with the three per-channel offsets as the sample's
    ``lighting_offset``; this preprocessor moves the batch to the device, adds the offsets there
    while converting to float (the image's channel order, before BGR to RGB, normalisation and
    batch augments such as mixup, as the CPU path), then does what ``ClsDataPreprocessor``
    does. The sum is the CPU path's, bit for bit (float32 ``pixel + offset`` either way).

    Batches without ``lighting_offset`` (validation, pipelines without lighting) are processed
    as by ``ClsDataPreprocessor``, with the same result. A batch where some samples carry
    offsets and others do not is refused: one pipeline yields one or the other. Images of one
    size are stacked into one contiguous batch on the device first, whatever their layout
    (``PackForDevice`` hands each image's HWC memory as it is).

    Args:
        **kwargs: ``ClsDataPreprocessor``'s arguments.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = _contiguous_batch(self.cast_data(data['inputs']))
        offsets = self._lighting_offsets(data.get('data_samples'))
        if offsets is not None:
            if isinstance(inputs, torch.Tensor):
                inputs = inputs.float() + offsets.view(-1, offsets.shape[1], 1, 1)
            else:  # images of several sizes
                inputs = [x.float() + o.view(-1, 1, 1) for x, o in zip(inputs, offsets)]
        return super().forward(dict(data, inputs=inputs), training)

    def _lighting_offsets(self, samples: Optional[Sequence[Any]]) -> Optional[torch.Tensor]:
        """The samples' offsets as a ``(batch, channels)`` float32 tensor on the device, or None
        when no sample has one."""
        if not samples:
            return None
        offsets = [sample.get(LIGHTING_KEY) if hasattr(sample, 'get') else None
                   for sample in samples]
        missing = sum(offset is None for offset in offsets)
        if missing == len(offsets):
            return None
        if missing:
            raise ExplainedValueError(
                f'{type(self).__name__}: {missing} of the {len(offsets)} samples of a batch '
                f'have no {LIGHTING_KEY}; every sample of a pipeline with '
                'FastLighting(on_device=True) has one: check that no sample skips that step')
        return torch.as_tensor(np.stack(offsets), dtype=torch.float32, device=self.device)


def _contiguous_batch(inputs: Any) -> Any:
    """The batch on the device in contiguous CHW order, whatever the layout the workers packed
    (``PackForDevice`` leaves each image's HWC memory as it is). A list of images of one size
    (``pseudo_collate``) becomes one tensor, so ``ClsDataPreprocessor`` processes the batch in
    a few operations rather than a few per image (its per-image branch gives the same values)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.contiguous()
    if isinstance(inputs, (list, tuple)) and inputs and all(
            isinstance(x, torch.Tensor) and x.shape == inputs[0].shape for x in inputs):
        return torch.stack(list(inputs)).contiguous()
    if isinstance(inputs, (list, tuple)):
        return [x.contiguous() if isinstance(x, torch.Tensor) else x for x in inputs]
    return inputs


def _pipelines(node: Any) -> Iterator[List[Any]]:
    """Every ``pipeline`` list in a data loader's config (data set wrappers included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'pipeline' and isinstance(value, (list, tuple)):
                yield list(value)
            else:
                yield from _pipelines(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _pipelines(item)


def check_device_steps(loader: str, dataloader_cfg: Any, preprocessor: Any) -> None:
    """Refuse a data loader whose lighting noise would be dropped without a word.

    ``FastLighting(on_device=True)`` only draws the noise; it is added by
    :class:`AugmentOnDevicePreprocessor`, which reads it from each sample's ``lighting_offset``.
    With another data preprocessor, or a pack step (``PackInputs``, ``PackForDevice``) that does
    not carry that key, the run would train without the noise and nothing would say so.

    Args:
        loader: The loader's config key, for the message (``'train_dataloader'``).
        dataloader_cfg: The loader's config (a dict; anything else is not checked).
        preprocessor: The model's built data preprocessor.

    Raises:
        ExplainedValueError: naming the key to change.
    """
    for pipeline in _pipelines(dataloader_cfg):
        types = [_type_name(step) for step in pipeline]
        lighting = [i for i, (kind, step) in enumerate(zip(types, pipeline))
                    if kind == 'FastLighting' and _on_device(step)]
        if not lighting:
            continue
        if not isinstance(preprocessor, AugmentOnDevicePreprocessor):
            raise ExplainedValueError(
                f'{loader}: FastLighting(on_device=True) leaves the lighting noise to the data '
                f'preprocessor, but model.data_preprocessor is {type(preprocessor).__name__}, '
                "which drops it; set data_preprocessor.type='resnest_mm."
                "AugmentOnDevicePreprocessor' or FastLighting(on_device=False)")
        packs = [step for kind, step in zip(types[lighting[0]:], pipeline[lighting[0]:])
                 if kind in PACK_TYPES]
        meta_keys = _meta_keys(packs[0]) if packs else ()
        if LIGHTING_KEY not in meta_keys:
            pack = _type_name(packs[0]) if packs else 'PackInputs'
            owner = pack + ("'" if pack.endswith('s') else "'s")
            raise ExplainedValueError(
                f'{loader}: FastLighting(on_device=True) hands the lighting noise to the data '
                f"preprocessor in '{LIGHTING_KEY}', but "
                + (f'no {pack} follows it' if not packs else
                   f"{owner} meta_keys do not carry it (they are "
                   f"{', '.join(map(repr, meta_keys)) or 'empty'})")
                + f"; add '{LIGHTING_KEY}' to {owner} meta_keys")


def _type_name(step: Any) -> str:
    """``'FastLighting'`` for ``'resnest_mm.FastLighting'``, the class itself or a built one."""
    kind = step.get('type') if isinstance(step, dict) else type(step)
    return kind.rsplit('.', 1)[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')


def _on_device(step: Any) -> bool:
    return bool(step.get('on_device') if isinstance(step, dict) else
                getattr(step, 'on_device', False))


def _meta_keys(step: Any) -> Sequence[str]:
    if isinstance(step, dict):
        return tuple(step.get('meta_keys', PackInputs.DEFAULT_META_KEYS))
    return tuple(getattr(step, 'meta_keys', ()))
