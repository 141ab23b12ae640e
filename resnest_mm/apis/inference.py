"""Run a trained classifier on images: ``init_model`` and ``inference_model``.

What mmpretrain lacks for us: its ``get_model`` / ``ImageClassificationInferencer`` build a config
in scope ``mmpretrain`` (so ``ResNeSt`` would be mmpretrain's network, not ours), load weights
non-strictly (a checkpoint in another layout loads nothing, with a warning) and return only the
best class. Here the model is built in our scope, foreign ResNeSt weights are converted, loading
is strict, and the top-k classes come back with names. The model returned by :func:`init_model`
also works with ``mmpretrain.apis.ImageClassificationInferencer(model)``.
"""
from __future__ import annotations

import copy
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar

from .. import device as device_info
from ..datasets.transforms import LoadImageRobust
from ..utils.checkpoint_io import check_fits, load_checkpoint_file
from ..utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from ..utils.mmengine_private import set_inference_meta

ImageInput = Union[str, os.PathLike, np.ndarray]

# mmcv's loader is replaced by ours (robust decoding); ours must report an unreadable file in
# inference, not hide it behind a placeholder.
_MMCV_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile')


def _config(config: Union[str, Config]) -> Config:
    """A Config, a config file, or a model name of the index (``'resnest50_1xb128_in1k'``)."""
    from ..hub import has_model, model_info

    if isinstance(config, Config):
        return config.copy()
    config = os.fspath(config)
    if not os.path.isfile(config):
        if has_model(config):
            return Config.fromfile(model_info(config).config)
        raise ExplainedFileNotFoundError(f'{config} is neither a config file nor a model name '
                                         '(resnest_mm.list_models() lists them)')
    return Config.fromfile(config)


def _dataset_classes(cfg: Config) -> Optional[List[str]]:
    """Class names of the config's test data set, found as mmpretrain's datasets find them.

    In mmpretrain's order: ``metainfo.classes`` or ``classes`` (a list, or a file with a name
    per line), then the dataset class's ``METAINFO`` (ImageNet's 1000 names), then -- for a
    folder data set -- its sub-folders in name order, as ``CustomDataset`` numbers them. Data
    set wrappers (``RepeatDataset`` ...) are looked through. None when nothing says.
    """
    from mmengine import list_from_file

    from ..registry import DATASETS, SCOPE

    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while isinstance(dataset.get('dataset'), dict):  # a wrapper
        dataset = dataset['dataset']
    classes = (dataset.get('metainfo') or {}).get('classes') or dataset.get('classes')
    if isinstance(classes, str):
        if not os.path.isfile(classes):
            raise ExplainedFileNotFoundError(f'the classes file {classes} named by the config '
                                             'does not exist')
        return list_from_file(classes)
    if classes:
        return list(classes)
    dataset_type = dataset.get('type')
    if isinstance(dataset_type, str):
        with DefaultScope.overwrite_default_scope(SCOPE):
            dataset_type = DATASETS.get(dataset_type)
    classes = (getattr(dataset_type, 'METAINFO', None) or {}).get('classes')
    if classes:
        return list(classes)
    prefix = dataset.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path') or prefix.get('img') or ''
    root = os.path.join(dataset.get('data_root') or '', prefix)
    if root and os.path.isdir(root):
        from mmpretrain.datasets.custom import find_folders
        return find_folders(root)[0] or None  # CustomDataset's own numbering
    return None


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               unsafe: bool = False) -> torch.nn.Module:
    """Build the config's classifier in eval mode and load a checkpoint into it.

    Args:
        config: A config file, a :class:`~mmengine.config.Config`, or a model name of the
            index (:func:`resnest_mm.list_models`).
        checkpoint: Weights: a model name or URL (downloaded once and verified:
            :func:`resnest_mm.hub.weights_file`), a checkpoint of our runs, one written by
            ``tools/model_converters/resnest_to_mm.py``, or original/timm/mmpretrain ResNeSt
            weights (converted on the fly). Read as data only and verified
            (:func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file`); loaded strictly.
            None keeps the initial weights.
        device: ``'cpu'``, ``'cuda:0'``, ``'npu:0'`` ...; the best device present when None.
        cfg_options: Config overrides, as ``--cfg-options`` takes them.
        unsafe: Unpickle a checkpoint that is not plain data (only for a trusted file).

    Returns:
        The ``ImageClassifier`` with ``cfg`` / ``_config`` (the config) and ``dataset_meta``
        (``{'classes': [...]}`` from the checkpoint's meta, else from the config's data set).

    Raises:
        ExplainedFileNotFoundError: the config or checkpoint does not exist.
        CheckpointError: the checkpoint is damaged, truncated or not plain data.
        ExplainedValueError: the checkpoint does not fit the model (names the keys or sizes).
    """
    from ..hub import weights_file
    from ..models.utils import convert_state_dict, detect_format
    from ..registry import MODELS, SCOPE

    cfg = _config(config)
    checkpoint = weights_file(checkpoint)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = copy.deepcopy(cfg.model)
    # As the Runner does: a top-level data_preprocessor (mean, std, to_rgb) belongs to the model.
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    # Weights come from the checkpoint: don't fetch or load a backbone's own init_cfg weights.
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(SCOPE):
        model = MODELS.build(model_cfg)
    if DefaultScope.get_current_instance() is None:
        # mmpretrain's ImageClassificationInferencer builds the test pipeline in the current
        # scope: without one it would look for our transforms among mmpretrain's only.
        DefaultScope.get_instance(SCOPE, scope_name=SCOPE)
    dataset_meta: Dict[str, Any] = {}
    if checkpoint is not None:
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu', unsafe=unsafe)
        state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
        own = model.state_dict()
        if not set(state_dict) <= set(own):  # not our layout: convert ResNeSt weights
            try:
                state_dict, _ = convert_state_dict(state_dict, detect_format(state_dict))
            except ValueError as exc:
                raise ExplainedValueError(
                    f'{checkpoint}: its keys fit neither this config\'s model nor a known '
                    f'ResNeSt layout ({exc}). Use the config it was trained with.') from None
        check_fits(own, state_dict, checkpoint)
        model.load_state_dict(state_dict, strict=False)  # only num_batches_tracked may lack
        meta = (ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
        dataset_meta = dict(meta.get('dataset_meta') or {})
    if not dataset_meta.get('classes'):
        classes = _dataset_classes(cfg)
        if classes is not None:
            dataset_meta['classes'] = classes
    classes = dataset_meta.get('classes')
    num_classes = model.head.fc.out_features if hasattr(getattr(model, 'head', None), 'fc') \
        else None
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        print_log(f'{len(classes)} class names for a {num_classes}-class model: names not '
                  'used, classes are shown by index', logger='current', level=logging.WARNING)
        dataset_meta.pop('classes')  # names of another data set would be wrong names
    set_inference_meta(model, cfg, dataset_meta)  # also where mmpretrain's inferencers look
    model.to(device or device_info.device_type())
    model.eval()
    return model


def _inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline, loading files strictly (a bad file is an error here)."""
    from ..registry import SCOPE, TRANSFORMS

    steps = [dict(type='resnest_mm.LoadImageRobust') if step['type'] in _MMCV_LOADERS else step
             for step in cfg.test_dataloader.dataset.pipeline]
    with DefaultScope.overwrite_default_scope(SCOPE):
        transforms = [TRANSFORMS.build(step) for step in steps]
    for transform in transforms:
        if isinstance(transform, LoadImageRobust):
            transform.on_error = 'skip'  # None comes back, and we name the file
    return Compose(transforms)


def inference_model(model: torch.nn.Module,
                    images: Union[ImageInput, Sequence[ImageInput]],
                    topk: int = 5,
                    batch_size: int = 16,
                    progress: bool = False) -> List[dict]:
    """Classify images with a model from :func:`init_model`.

    Args:
        model: The classifier (from :func:`init_model`, or any with ``cfg`` and
            ``dataset_meta``).
        images: A path, or a decoded uint8 array (BGR ``HxWx3`` as ``cv2.imread`` gives; grey
            and BGRA are converted), or a list of them.
        topk: How many classes to return per image.
        batch_size: Images per forward pass.
        progress: Draw a progress bar on stderr.

    Returns:
        One dict per image: ``pred_label`` (int), ``pred_class`` (name or None),
        ``pred_score`` (float), ``topk`` (a list of ``{'label', 'class', 'score'}``, best first)
        and ``pred_scores`` (all class probabilities, numpy).

    Raises:
        ExplainedValueError: an image cannot be read (the message names it), or topk < 1.
    """
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        images = [images]
    images = [os.fspath(i) if isinstance(i, os.PathLike) else i for i in images]
    if topk < 1:
        raise ExplainedValueError(f'topk={topk} must be at least 1')
    if batch_size < 1:
        raise ExplainedValueError(f'batch_size={batch_size} must be at least 1')
    pipeline = _inference_pipeline(model.cfg)
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    bar = ProgressBar(len(images), file=sys.stderr) if progress else None
    results: List[dict] = []
    for start in range(0, len(images), batch_size):
        batch = []
        for i, image in enumerate(images[start:start + batch_size], start):
            if isinstance(image, str):
                if not os.path.isfile(image):
                    raise ExplainedFileNotFoundError(f'image {image} does not exist')
                name = image
                sample = pipeline(dict(img_path=image))
            elif isinstance(image, np.ndarray):
                name = f'image #{i} (an array)'
                try:
                    sample = pipeline(dict(img=image, img_shape=image.shape[:2],
                                           ori_shape=image.shape[:2]))
                except ExplainedValueError as exc:
                    raise ExplainedValueError(f'{name}: {exc}') from None
            else:
                raise ExplainedValueError(f'image #{i} is a {type(image).__name__}; give a file '
                                          'path or a decoded BGR uint8 array')
            if sample is None:
                raise ExplainedValueError(f'{name} could not be read as an image (see the '
                                          'warning above for why)')
            batch.append(sample)
        with torch.no_grad():
            predictions = model.test_step(pseudo_collate(batch))
        for pred in predictions:
            scores = pred.pred_score.float().cpu()
            k = min(topk, scores.numel())
            values, labels = scores.topk(k)
            top = [dict(label=int(label), score=float(value),
                        **{'class': classes[int(label)] if classes is not None else None})
                   for value, label in zip(values, labels)]
            results.append(dict(pred_label=top[0]['label'], pred_class=top[0]['class'],
                                pred_score=top[0]['score'], topk=top,
                                pred_scores=scores.numpy()))
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        sys.stderr.write('\n')
    return results
