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

import ast
import difflib
import functools
import inspect
import os.path as osp
import re
import types
import typing
from typing import Any, Dict, List, Optional, Tuple, Union

from mmengine.config import Config, ConfigDict

from ..datasets.image_files import IMAGE_EXTENSIONS, scan_split
from ..registry import bare_type
from ..utils.errors import ExplainedFileNotFoundError, ExplainedKeyError, ExplainedValueError
from .config_loader import config_chain

__all__ = ['IMAGE_EXTENSIONS', 'check_cfg_options', 'check_datasets', 'check_top_level_keys',
           'check_types', 'check_values']
FOLDER_DATASETS = ('ImageNet', 'CustomDataset')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def closest(word: str, choices) -> Optional[str]:
    """The choice closest to ``word``, case-insensitively first (``ResNest`` -> ``ResNeSt``,
    where plain ``difflib`` picks ``ResNet``), else by spelling, or None."""
    by_lower: Dict[str, str] = {}
    for choice in sorted(str(c) for c in choices):
        by_lower.setdefault(choice.lower(), choice)
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None


def _suggest(word: str, choices) -> str:
    close = closest(word, choices)
    return f' (did you mean {close!r}?)' if close else ''


def _keys_read(source: str) -> set:
    """Top-level config keys a piece of source reads: ``cfg.get('key')``, ``cfg['key']``,
    ``args.get('key')`` (mmengine's builder), not ``env_cfg.get(...)`` and the like."""
    return set(re.findall(r"(?<![\w.])(?:self\.)?(?:cfg|args)(?:\.get\(|\[)\s*'(\w+)'", source))


def _runner_classes(runner_type: Optional[str]) -> List[type]:
    """mmengine's ``Runner`` and the classes of the runner ``runner_type`` names (ours by
    default) up to it."""
    from mmengine.runner import Runner

    from ..registry import RUNNERS
    classes = [Runner]
    runner = RUNNERS.get(runner_type or 'ResNeStRunner')
    if isinstance(runner, type):
        classes += [c for c in runner.__mro__ if issubclass(c, Runner) and c is not Runner]
    return classes


@functools.cache  # reads sources: once per runner type and process
def runner_keys(runner_type: Optional[str] = None) -> frozenset:
    """The top-level keys a run reads, asked of the code that reads them: the parameters of
    mmengine's ``Runner.__init__`` and of the runner class of ``runner_type`` (ours by
    default), and the keys their source reads from the config (``compile``, ``sync_bn``,
    ``unsafe_load`` ...), plus ``runner_type`` as mmengine's runner builder reads it."""
    from mmengine.registry import build_functions

    keys = set()
    for cls in _runner_classes(runner_type):
        keys |= set(inspect.signature(cls.__init__).parameters) - {'self', 'args', 'kwargs'}
        try:
            keys |= _keys_read(inspect.getsource(cls))
        except (OSError, TypeError):  # no source (a compiled class): its signature only
            pass
    keys |= _keys_read(inspect.getsource(build_functions.build_runner_from_cfg))
    return frozenset(keys)


# Top-level keys a config carries for the config system and mmpretrain's tools rather than the
# Runner: mmengine's Config reads _base_ and custom_imports, mmpretrain's test tool tta_model
# and tta_pipeline; mmpretrain's _base_ files give the data preprocessor at the top level.
# decode_on_device is read by the tools before the runner exists (datasets.device_decode).
CONFIG_KEYS = frozenset({'_base_', 'custom_imports', 'tta_model', 'tta_pipeline',
                         'data_preprocessor', 'default_scope', 'runner_type', 'decode_on_device'})
# Runner.from_cfg reads these top-level keys when present, so a config may lack them.
RUNNER_KEYS = runner_keys() | CONFIG_KEYS


def _parameters(function) -> set:
    return set(inspect.signature(function).parameters) - {'self', 'args', 'kwargs'}


@functools.cache  # reads sources: once per runner type and process
def known_keys(runner_type: Optional[str] = None) -> Dict[str, frozenset]:
    """Keys the Runner reads from these dicts although a config may not spell them out, asked
    of the code that reads them: ``randomness`` is passed to ``Runner.set_randomness``,
    ``env_cfg`` is read by the ``setup_env`` of mmengine's Runner and of the runner class of
    ``runner_type`` (``env_cfg.get('key')``; ours by default), and its ``mp_cfg`` is passed to
    ``set_multi_processing`` (beside ``distributed``, which the runner gives)."""
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    env_keys = set()
    for cls in _runner_classes(runner_type):
        setup_env = vars(cls).get('setup_env')
        if setup_env is not None:
            env_keys |= set(re.findall(r"env_cfg\.get\(\s*'(\w+)'",
                                       inspect.getsource(setup_env)))
    return {
        'randomness': frozenset(_parameters(Runner.set_randomness)),
        'env_cfg': frozenset(env_keys),
        'env_cfg.mp_cfg': frozenset(_parameters(set_multi_processing) - {'distributed'}),
    }


# dist_cfg, the log processor and the model wrapper pass any key on to functions with many
# options (init_process_group ...).
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
                known = known_keys(cfg.get('runner_type')).get('.'.join(parts[:depth]),
                                                             frozenset())
                if part in known or (depth == 0 and part in RUNNER_KEYS):
                    break  # read by the Runner
                if leaf and 'type' in node:
                    break  # a component argument: its class validates it
                raise ExplainedKeyError(
                    f'--cfg-options {dotted}: {where} has no key {part!r}'
                    f'{_suggest(part, set(node.keys()) | set(known))}; check the spelling '
                    f'against the config ({cfg.filename or "as loaded"})')
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


def _registries() -> Dict[str, Any]:
    """The registry of each kind of component :func:`_components` yields."""
    from mmpretrain.registry import BATCH_AUGMENTS

    from .. import registry as ours
    registries = {name: getattr(ours, name, None) for name in (
        'MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'OPTIM_WRAPPERS', 'OPTIMIZERS',
        'PARAM_SCHEDULERS', 'HOOKS', 'METRICS', 'LOOPS', 'VISUALIZERS', 'VISBACKENDS', 'RUNNERS')}
    registries['BATCH_AUGMENTS'] = BATCH_AUGMENTS
    return registries


def check_types(cfg: Config) -> None:
    """Refuse a component ``type`` no registry of scope resnest_mm knows, before the Runner
    exists (mmengine raises its KeyError after a few hundred lines of log).

    Raises:
        KeyError: naming the key, the type, and the closest registered name.
    """
    from mmengine.registry import DefaultScope

    from .. import registry as ours
    registries = _registries()
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


def _names_used(tree: ast.Module) -> set:
    """Names a config file reads: variables (``type=dataset_type``) and ``_base_.name``."""
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == '_base_':
            used.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used |= set(re.findall(r'\{\{\s*_base_\.(\w+)', node.value))
    return used


def _names_assigned(tree: ast.Module) -> set:
    return {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)}


def check_top_level_keys(cfg: Config) -> None:
    """Refuse a top-level key that nothing reads: mmengine ignores it, so a misspelt
    ``train_dataloder = dict(batch_size=8)`` trains with the base's batch size, silently.

    A key is read when the runner reads it (:func:`runner_keys`), when it is one of
    :data:`CONFIG_KEYS`, or when it is a variable: a name some file of the ``_base_`` chain uses
    (``dataset_type``, ``num_classes``, ``train_pipeline`` ...) or defines in a ``_base_``
    file (a base's variable the config sets anew). So only a key the config itself introduces
    and never uses is refused.

    Raises:
        KeyError: naming the file, the key and the closest key a run reads.
    """
    if not cfg.filename or not osp.isfile(cfg.filename):
        return
    chain = config_chain(cfg.filename)
    used, in_bases = set(), set()
    for i, (_, tree) in enumerate(chain):
        used |= _names_used(tree)
        if i:
            in_bases |= _names_assigned(tree)
    known = runner_keys(cfg.get('runner_type')) | CONFIG_KEYS
    for key in cfg.keys():
        if key in known or key in used or key in in_bases or key.startswith('_'):
            continue
        raise ExplainedKeyError(
            f'{cfg.filename}: the top-level key {key!r} is read by nothing (neither the runner '
            f'nor a variable the config uses){_suggest(key, known)}; fix its spelling or '
            'delete it')


def _one_hint(param: inspect.Parameter, init: Any) -> Any:
    """The annotation of one parameter, resolved alone (``'int | None'`` from a module with
    postponed annotations), or None."""
    if param.annotation is param.empty:
        return None
    holder = type('Hint', (), {'__annotations__': {param.name: param.annotation}})
    try:
        return typing.get_type_hints(holder, globalns=getattr(init, '__globals__', None))[
            param.name]
    except Exception:
        return None


def _hints(cls: type, name: str):
    """``(annotation, default)`` of ``cls``'s constructor argument ``name``, from the first
    class of its MRO that declares it (a subclass taking ``*args, **kwargs`` passes them on);
    ``(None, None)`` when none declares it."""
    for klass in getattr(cls, '__mro__', [cls]):
        init = vars(klass).get('__init__') if isinstance(klass, type) else klass
        if init is None:
            continue
        try:
            param = inspect.signature(init).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        try:
            hint = typing.get_type_hints(init).get(name)
        except Exception:  # another annotation names what is not importable here: this one
            hint = _one_hint(param, init)
        default = None if param.default is param.empty else param.default
        return hint, default
    return None, None


_SCALARS = (bool, int, float, str)


def _expected(hint, default) -> Tuple[Tuple[type, ...], bool]:
    """The scalar types an argument takes, and whether only those (``interval: int``) or also
    others (``lr: Union[float, Tensor]``: then only a string, which neither is, is refused).
    ``((), False)`` when nothing can be told (``Any``, a callable, a sequence ...)."""
    if hint is not None:
        union = typing.get_origin(hint) in (Union, types.UnionType)
        args = typing.get_args(hint) if union else (hint, )
        args = tuple(a for a in args if a is not type(None))
        scalars = tuple(a for a in args if a in _SCALARS)
        if str in scalars or not scalars:
            return (), False
        others = [a for a in args if a not in _SCALARS]
        # a class that is not str-like (a tensor); Any, TypeVars and generics may be strings
        strict = not others
        if not all(isinstance(a, type) and not issubclass(a, str) for a in others):
            return (), False
        return scalars, strict
    if type(default) in (int, float):  # an unannotated number: a number is expected
        return (int, float), True
    return (), False


def _fits(value: Any, expected: Tuple[type, ...], strict: bool) -> bool:
    if value is None or not expected:
        return True  # a default of None is the common "unset"; the component decides
    if not strict:
        return not isinstance(value, str)
    if isinstance(value, bool):
        return bool in expected or int in expected
    if isinstance(value, int):
        return int in expected or float in expected
    if isinstance(value, float):
        return float in expected
    return isinstance(value, tuple(expected))


def _type_names(expected: Tuple[type, ...]) -> str:
    names = {bool: 'a bool (True/False)', int: 'an integer', float: 'a number', str: 'a string'}
    if float in expected:
        expected = tuple(t for t in expected if t is not int)
    return ' or '.join(names[t] for t in expected)


def _check_arguments(path: str, cls: type, node: dict, source: str) -> None:
    for key, value in node.items():
        if key == 'type' or isinstance(value, (dict, list, tuple)):
            continue
        expected, strict = _expected(*_hints(cls, key))
        if not _fits(value, expected, strict):
            raise ExplainedValueError(
                f'{path}.{key}={value!r}: {getattr(cls, "__name__", cls)} takes '
                f'{_type_names(expected)} there, not a {type(value).__name__}; fix it in '
                f'{source} or in --cfg-options')


def check_values(cfg: Config) -> None:
    """Refuse a config value of the wrong type before the run starts, where the component
    would fail when it first uses it (``default_hooks.checkpoint.interval='abc'`` after a whole
    epoch, ``optim_wrapper.optimizer.lr='abc'`` in a sentence that names no key).

    The types come from the components' own constructors: the annotation of each argument
    (``interval: int``; ``lr: Union[float, Tensor]`` refuses a string only), else the type of
    a numeric default. Only scalar values are checked (numbers, bools, strings); data loaders
    are checked against ``torch.utils.data.DataLoader``.

    Raises:
        ValueError: naming the key, the value, the component and the type expected.
    """
    from mmengine.registry import DefaultScope
    from torch.utils.data import DataLoader

    from .. import registry as ours
    source = cfg.filename or 'the config'
    registries = _registries()
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or ours.SCOPE):
        for kind, path, name in _components(cfg):
            cls = registries[kind].get(name)
            node = _node(cfg, path)
            if callable(cls) and isinstance(node, dict):  # a class, or a builder function
                _check_arguments(path, cls, node, source)
    for name in LOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            _check_arguments(name, DataLoader, loader, source)


def _node(cfg: Config, path: str) -> Any:
    node: Any = cfg
    for part in path.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit():
            node = node[int(part)]
        elif isinstance(node, (dict, Config)):
            node = node.get(part)
        else:
            return None
    return node
