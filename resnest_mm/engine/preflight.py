"""Checks run by ``tools/train.py`` / ``tools/test.py`` before the Runner starts, each failing
with one sentence that names the key or path and says what to do.

What MMEngine and MMPretrain lack here: ``--cfg-options`` silently adds a misspelt key (the run
then trains with the default); a missing data folder ends in a bare ``FileNotFoundError`` from
deep inside dataset building; an empty class folder only logs a warning, yet still counts as a
class; and the class indices of a folder dataset come from each split's own sorted folder
names, so a validation split whose classes differ from training scores against wrong labels
without a word.
"""
from __future__ import annotations

import difflib
import os.path as osp
from typing import Any, Dict, List, Optional

from mmengine.config import Config, ConfigDict

from ..datasets.image_files import IMAGE_EXTENSIONS, scan_split
from ..registry import bare_type
from ..utils.errors import ExplainedFileNotFoundError, ExplainedKeyError, ExplainedValueError

__all__ = ['IMAGE_EXTENSIONS', 'check_cfg_options', 'check_datasets']
FOLDER_DATASETS = ('ImageNet', 'CustomDataset')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''


# Runner.from_cfg reads these top-level keys when present, so a config may lack them.
RUNNER_KEYS = frozenset({
    'compile', 'sync_bn', 'model_wrapper_cfg', 'find_unused_parameters', 'log_processor',
    'experiment_name', 'launcher', 'work_dir', 'load_from', 'resume', 'auto_scale_lr',
    'randomness', 'env_cfg', 'log_level', 'default_scope', 'custom_hooks', 'visualizer',
    'default_hooks', 'val_cfg', 'test_cfg', 'cfg', 'runner_type', 'data_preprocessor',
    'unsafe_load', 'channels_last', 'resume_fallback'})
# Keys the Runner reads from these dicts although a config may not spell them out
# (Runner.set_randomness, Runner.setup_env and its mp_cfg); dist_cfg, the log processor and the
# model wrapper pass any key on to functions with many options (init_process_group ...).
KNOWN_KEYS = {
    'randomness': {'seed', 'deterministic', 'diff_rank_seed'},
    'env_cfg': {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'},
    'env_cfg.mp_cfg': {'mp_start_method', 'opencv_num_threads'},
}
OPEN_KEYS = ('env_cfg.dist_cfg', 'log_processor', 'model_wrapper_cfg')


def check_cfg_options(cfg: Config, options: Optional[Dict[str, Any]]) -> None:
    """Refuse ``--cfg-options`` keys that do not exist in the config.

    Accepted although absent: the Runner's optional top-level keys (``compile``, ``sync_bn``
    ...), any key below the open dicts (``randomness``, ``env_cfg`` ...), and a new leaf inside
    a component's arguments (a dict with ``type``), which the component's constructor checks.
    Everything else (a misspelt key, a path through missing parents, a leaf of a plain dict)
    must already exist.

    Raises:
        KeyError: naming the key, with the closest existing one.
    """
    for dotted in options or {}:
        node: Any = cfg
        parts = dotted.split('.')
        if len(parts) == 1 and parts[0] in RUNNER_KEYS or dotted.startswith(OPEN_KEYS):
            continue
        for depth, part in enumerate(parts):
            leaf = depth == len(parts) - 1
            where = '.'.join(parts[:depth]) or 'the config'
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise ExplainedKeyError(
                        f'--cfg-options {dotted}: {where} is a list of {len(node)} '
                        f'items; {part!r} is not an index of it')
                node = node[int(part)]
                continue
            if not isinstance(node, (dict, ConfigDict, Config)):
                raise ExplainedKeyError(
                    f'--cfg-options {dotted}: {where} is a value, not a dict; it has '
                    f'no key {part!r}')
            if part not in node:
                known = KNOWN_KEYS.get('.'.join(parts[:depth]), set())
                if part in known or (depth == 0 and part in RUNNER_KEYS):
                    break  # read by the Runner
                if leaf and 'type' in node:
                    break  # a component argument: its class validates it
                raise ExplainedKeyError(
                    f'--cfg-options {dotted}: {where} has no key {part!r}'
                    f'{_suggest(part, set(node.keys()) | known)}; check the spelling against '
                    f'the config ({cfg.filename or "as loaded"})')
            node = node[part]


def _split_folder(dataset: Dict[str, Any]) -> Optional[str]:
    """The image folder a folder dataset config reads, or None when it reads a list file."""
    kind = bare_type(dataset.get('type'))
    if kind not in FOLDER_DATASETS or dataset.get('ann_file'):
        return None
    prefix = dataset.get('data_prefix', '')
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    if not prefix and kind == 'ImageNet':
        prefix = dataset.get('split', '')
    return osp.join(dataset.get('data_root', '') or '', prefix or '')


def _class_folders(name: str, folder: str, extensions=None) -> List[str]:
    """The class folders of a split, by the rule the dataset scan uses (``image_files``):
    a broken link, a link loop or an unlistable folder anywhere below is named here, before
    the Runner is built."""
    if not osp.isdir(folder):
        raise ExplainedFileNotFoundError(
            f'{name}.dataset: the image folder {folder} does not exist. Prepare the data there '
            f'(ImageNet: tools/dataset_converters/prepare_imagenet.py) or point to it with '
            f'--cfg-options {name}.dataset.data_root=/path/to/data')
    scan = scan_split(folder, extensions)
    problem = scan.problems_sentence()
    if problem:
        raise ExplainedValueError(f'{name}.dataset: {problem}')
    classes = scan.classes
    if not classes:
        raise ExplainedFileNotFoundError(
            f'{name}.dataset: {folder} has no class folders; a folder dataset reads '
            f'{folder}/<class>/<image> files')
    empty = scan.empty_classes
    if empty:
        shown = ', '.join(osp.join(folder, c) for c in empty[:5])
        more = f' and {len(empty) - 5} more' if len(empty) > 5 else ''
        raise ExplainedValueError(
            f'{name}.dataset: {len(empty)} class folder(s) hold no images: {shown}{more}. An '
            'empty class still gets an output and a label index; add its images or remove '
            'the folder')
    return classes


def check_datasets(cfg: Config, loaders=LOADERS) -> None:
    """Check the folders of the folder datasets the config's data loaders read.

    Raises:
        FileNotFoundError: a data folder is missing or has no class folders.
        ValueError: a class folder is empty, or evaluation classes are not training classes.
    """
    found: Dict[str, List[str]] = {}
    for name in loaders:
        loader = cfg.get(name)
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        folder = _split_folder(dataset) if isinstance(dataset, dict) else None
        if folder is not None:
            found[name] = _class_folders(name, folder, dataset.get('extensions'))
    train = found.get('train_dataloader')
    for name in ('val_dataloader', 'test_dataloader'):
        if train is None or name not in found:
            continue
        extra = sorted(set(found[name]) - set(train))
        missing = sorted(set(train) - set(found[name]))
        why = ('label indices come from each split\'s sorted folder names, so evaluation would '
               'score against the wrong labels')
        if extra:
            raise ExplainedValueError(
                f'{name}.dataset: class folder(s) {", ".join(extra[:5])} are not among the '
                f'{len(train)} training classes; {why}. Use the same class folders in both '
                'splits')
        if missing:
            raise ExplainedValueError(
                f'{name}.dataset: {len(missing)} of the {len(train)} training classes have no '
                f'folder here ({", ".join(missing[:5])}); {why}. Give every training class a '
                'folder, or list the images with their labels in an ann_file')


def _typed(node: Any, path: str):
    """``(path, type)`` of a component config, or of each in a list of them."""
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _typed(item, f'{path}.{i}')
    elif isinstance(node, dict) and isinstance(node.get('type'), str):
        yield path, node['type']


def _components(cfg: Config):
    """``(registry name, path, type)`` of every component a Runner builds from the config."""
    model = cfg.get('model') or {}
    for key in ('', 'backbone', 'neck', 'head', 'head.loss', 'data_preprocessor'):
        node = model
        for part in key.split('.') if key else []:
            node = node.get(part) if isinstance(node, dict) else None
        yield from (('MODELS', *t) for t in _typed(node, 'model' + ('.' + key if key else '')))
    augments = (model.get('train_cfg') or {}).get('augments') if isinstance(model, dict) else None
    yield from (('BATCH_AUGMENTS', *t) for t in _typed(augments, 'model.train_cfg.augments'))
    yield from (('MODELS', *t) for t in _typed(cfg.get('data_preprocessor'), 'data_preprocessor'))
    for name in LOADERS:
        loader = cfg.get(name)
        if not isinstance(loader, dict):
            continue
        dataset = loader.get('dataset') or {}
        yield from (('DATASETS', *t) for t in _typed(dataset, f'{name}.dataset'))
        if isinstance(dataset, dict):
            yield from (('TRANSFORMS', *t)
                        for t in _typed(dataset.get('pipeline'), f'{name}.dataset.pipeline'))
        yield from (('DATA_SAMPLERS', *t) for t in _typed(loader.get('sampler'), f'{name}.sampler'))
    wrapper = cfg.get('optim_wrapper') or {}
    yield from (('OPTIM_WRAPPERS', *t) for t in _typed(wrapper, 'optim_wrapper'))
    if isinstance(wrapper, dict):
        yield from (('OPTIMIZERS', *t)
                    for t in _typed(wrapper.get('optimizer'), 'optim_wrapper.optimizer'))
    yield from (('PARAM_SCHEDULERS', *t) for t in _typed(cfg.get('param_scheduler'),
                                                         'param_scheduler'))
    for name, hook in (cfg.get('default_hooks') or {}).items():
        yield from (('HOOKS', *t) for t in _typed(hook, f'default_hooks.{name}'))
    yield from (('HOOKS', *t) for t in _typed(cfg.get('custom_hooks'), 'custom_hooks'))
    for name in ('val_evaluator', 'test_evaluator'):
        yield from (('METRICS', *t) for t in _typed(cfg.get(name), name))
    for name in ('train_cfg', 'val_cfg', 'test_cfg'):
        yield from (('LOOPS', *t) for t in _typed(cfg.get(name), name))
    visualizer = cfg.get('visualizer') or {}
    yield from (('VISUALIZERS', *t) for t in _typed(visualizer, 'visualizer'))
    if isinstance(visualizer, dict):
        yield from (('VISBACKENDS', *t) for t in _typed(visualizer.get('vis_backends'),
                                                        'visualizer.vis_backends'))
    if isinstance(cfg.get('runner_type'), str):
        yield 'RUNNERS', 'runner_type', cfg.runner_type


def _registered_names(registry) -> set:
    names = set()
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    return names


def check_types(cfg: Config) -> None:
    """Refuse a component ``type`` no registry of scope resnest_mm knows, before the Runner
    exists (mmengine raises its KeyError after a few hundred lines of log).

    Raises:
        KeyError: naming the key, the type, and the closest registered name.
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import BATCH_AUGMENTS

    from .. import registry as ours
    registries = {name: getattr(ours, name, None) for name in (
        'MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'OPTIM_WRAPPERS', 'OPTIMIZERS',
        'PARAM_SCHEDULERS', 'HOOKS', 'METRICS', 'LOOPS', 'VISUALIZERS', 'VISBACKENDS', 'RUNNERS')}
    registries['BATCH_AUGMENTS'] = BATCH_AUGMENTS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or ours.SCOPE):
        for kind, path, name in _components(cfg):
            registry = registries[kind]
            if registry.get(name) is not None:
                continue
            raise ExplainedKeyError(
                f'{path}: type={name!r} is not a registered {registry.name} in scope '
                f'{ours.SCOPE}{_suggest(name, _registered_names(registry))}; check the '
                f'spelling in {cfg.filename or "the config"}')


def check_pretrained_init(cfg: Config) -> None:
    """Refuse ``init_cfg=dict(type='Pretrained', ...)`` in the model: mmengine loads it with its
    own loader, without the digest check and the strict fit (a checkpoint of another width
    loads partly, with warnings), so weights come in through ``load_from`` here.

    Raises:
        ValueError: naming the key and what to write instead.
    """
    def walk(node: Any, path: str):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                yield from walk(value, f'{path}.{i}')
        if isinstance(node, dict) and node.get('type') == 'Pretrained':
            yield path, node

    for path, init in walk(cfg.get('model') or {}, 'model'):
        raise ExplainedValueError(
            f'{path}: init_cfg type Pretrained loads {init.get("checkpoint")} past resnest_mm\'s '
            'checkpoint checks (digest, data only, strict fit); drop it and use load_from='
            f'{init.get("checkpoint")} instead (with default_hooks.checkpoint_adapter.'
            "head_mismatch='reinit' for a new classifier)")
