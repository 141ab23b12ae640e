"""``apply_decode_on_device``: the ``decode_on_device`` switch, turned into config changes."""
from __future__ import annotations

from mmengine.config import Config, ConfigDict

from ...registry import bare_type, scoped
from ...utils.errors import ExplainedValueError
from .read_for_device_decode import DEVICE_META_KEYS

_CROP_KEYS = ('scale', 'crop_ratio_range', 'aspect_ratio_range', 'max_attempts')
_LOAD_KEYS = ('on_error', 'max_pixels', 'max_scans', 'max_decode_seconds', 'backend_args')


def _refuse(kind: str, why: str) -> ExplainedValueError:
    return ExplainedValueError(
        f'decode_on_device: train_dataloader.dataset.pipeline has {kind}, which {why}; the '
        'device path takes DecodeRandomResizedCrop (or LoadImageRobust + RandomResizedCrop), '
        'then RandomFlip (horizontal), FastColorJitter (no hue), FastLighting, PackInputs. '
        'Change the pipeline or train without decode_on_device')


def apply_decode_on_device(cfg: Config) -> Config:
    """Rewrite ``cfg`` (in place, and returned) so the device decodes the training images.

    The train pipeline's loading, random-resized crop, flip, colour jitter and lighting become
    one :class:`ReadForDeviceDecode` (the workers read the files and draw the choices) followed
    by ``PackInputs`` carrying the choices; the data preprocessor becomes
    :class:`DecodeOnDevicePreprocessor` with the same arguments. Validation and test keep the
    CPU pipeline.

    Raises:
        ExplainedValueError: the train pipeline has a step the device path does not do.
    """
    pipeline = list(cfg.train_dataloader.dataset.pipeline)
    # type names compared without our scope (configs name ours 'resnest_mm.X'), written with it
    steps = [dict(step, type=bare_type(step['type'])) for step in pipeline]
    read = dict(type=scoped('ReadForDeviceDecode'))
    first = steps.pop(0) if steps else {'type': 'nothing'}
    if first['type'] == 'DecodeRandomResizedCrop':
        read.update((k, v) for k, v in first.items() if k in _CROP_KEYS + _LOAD_KEYS)
    elif first['type'] == 'LoadImageRobust' and steps and steps[0]['type'] == 'RandomResizedCrop':
        read.update((k, v) for k, v in first.items() if k in _LOAD_KEYS)
        crop = steps.pop(0)
        read.update((k, v) for k, v in crop.items() if k in _CROP_KEYS)
    else:
        raise _refuse(first['type'] + ' first', 'is not a random-resized crop of a loaded file')
    pack = None
    for step in steps:
        kind = step.pop('type')
        if pack is not None:
            raise _refuse(f'{kind} after PackInputs', 'the device path does not know')
        if kind == 'RandomFlip':
            if step.get('direction', 'horizontal') != 'horizontal' or \
                    not isinstance(step.get('prob'), (int, float)):
                raise _refuse('RandomFlip with another direction', 'is not a horizontal flip')
            read['flip_prob'] = float(step['prob'])
        elif kind == 'FastColorJitter':
            read['color_jitter'] = step
        elif kind == 'FastLighting':
            read['lighting'] = step
        elif kind == 'PackInputs':
            pack = step
        else:
            raise _refuse(kind, 'the device path does not do')
    pack = dict(pack or {})
    pack['meta_keys'] = tuple(dict.fromkeys(tuple(pack.get('meta_keys', ())) +
                                            DEVICE_META_KEYS))
    cfg.train_dataloader.dataset.pipeline = [read, dict(type='PackInputs', **pack)]
    for owner in (cfg, cfg.model):
        preprocessor = owner.get('data_preprocessor')
        if isinstance(preprocessor, (dict, ConfigDict)):
            preprocessor['type'] = scoped('DecodeOnDevicePreprocessor')
    if cfg.get('data_preprocessor') is None and cfg.model.get('data_preprocessor') is None:
        cfg.model.data_preprocessor = dict(type=scoped('DecodeOnDevicePreprocessor'))
    return cfg
