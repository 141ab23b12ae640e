"""resnest_mm's registries: children of mmpretrain's, in scope ``resnest_mm``.

A config with ``default_scope = 'resnest_mm'`` resolves every type through these nodes: ours
first, then mmpretrain's, then mmengine's. mmengine imports a registry's ``locations`` lazily on
first use, but it does not run the *parent's* locations when a child falls back to it, so each node
lists mmpretrain's modules after ours; that is what makes ``ImageClassifier``, ``LinearClsHead``,
``CustomDataset`` and mmpretrain's transforms resolve here.

Importing this module changes nothing of mmengine, mmpretrain or torch: where the stack falls
short, resnest_mm registers its own components here (``ResNeStRunner``, ``CpuAmpOptimWrapper``,
...), selected by the configs.

Our configs and code name our types with the scope, ``'resnest_mm.ResNeSt'``
(:func:`scoped`): mmengine resolves ``scope.Name`` from any registry of the tree, so they build
the same classes under ``default_scope='mmpretrain'`` (mmpretrain's tools, ``get_model``, the
inferencer), where a bare ``'ResNeSt'`` or ``'CustomDataset'`` would be mmpretrain's class of
that name. ``RUNNERS`` hangs from mmengine's root, not from mmpretrain's node (which holds no
runner): mmpretrain's ``tools/test.py`` builds ``runner_type`` from the root, and the root finds
``resnest_mm.ResNeStRunner`` only among its direct children.
"""
import warnings
from typing import Any

from mmengine.registry import DefaultScope, Registry

# mmcv-lite has no compiled ops, and mmpretrain's transformer module says so on every start
# (UserWarning), though nothing here uses deformable attention: keep tool output to our sentences.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``',
                        category=UserWarning)
from mmengine import registry as mmengine_registry  # noqa: E402
from mmpretrain import registry as mmpretrain_registry  # noqa: E402

SCOPE = 'resnest_mm'


def scoped(name: str) -> str:
    """``'resnest_mm.<name>'``: a type name that means ours under any default scope."""
    return name if name.startswith(SCOPE + '.') else f'{SCOPE}.{name}'


def bare_type(name: Any) -> Any:
    """A type name without our scope (``'resnest_mm.ResNeSt'`` -> ``'ResNeSt'``); other values
    as they are."""
    if isinstance(name, str) and name.startswith(SCOPE + '.'):
        return name[len(SCOPE) + 1:]
    return name

_PRE_MODELS = 'mmpretrain.models'
_PRE_DATASETS = 'mmpretrain.datasets'
_PRE_ENGINE = 'mmpretrain.engine'
_PRE_EVAL = 'mmpretrain.evaluation'
_PRE_VIS = 'mmpretrain.visualization'


def _child(parent: Registry, ours: list, theirs: list) -> Registry:
    """A child node of ``parent`` in our scope, importing our modules then mmpretrain's.

    Building through it makes ``resnest_mm`` the default scope for the duration of the build, so
    the nested builds of mmpretrain's components (the backbone inside ``ImageClassifier``)
    resolve through our nodes too, even when no config set ``default_scope``.
    """
    def build_in_our_scope(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with DefaultScope.overwrite_default_scope(SCOPE):
            return parent.build_func(cfg, *args, **kwargs)

    return Registry(parent.name, parent=parent, scope=SCOPE, locations=ours + theirs,
                    build_func=build_in_our_scope)


_MODELS = 'resnest_mm.models'
_ENGINE = 'resnest_mm.engine'
_DATASETS = 'resnest_mm.datasets'

# Runners set up their own default scope (the config's default_scope) for their whole life;
# building one inside a temporary scope would drop it when the build returns.
RUNNERS = Registry(mmengine_registry.RUNNERS.name, parent=mmengine_registry.RUNNERS,
                   scope=SCOPE, locations=[_ENGINE])
RUNNER_CONSTRUCTORS = _child(mmpretrain_registry.RUNNER_CONSTRUCTORS, [], [_PRE_ENGINE])
LOOPS = _child(mmpretrain_registry.LOOPS, [_ENGINE], [_PRE_ENGINE])
HOOKS = _child(mmpretrain_registry.HOOKS, [_ENGINE], [_PRE_ENGINE])
LOG_PROCESSORS = _child(mmpretrain_registry.LOG_PROCESSORS, [], [_PRE_ENGINE])
OPTIMIZERS = _child(mmpretrain_registry.OPTIMIZERS, [_ENGINE], [_PRE_ENGINE])
OPTIM_WRAPPERS = _child(mmpretrain_registry.OPTIM_WRAPPERS, [_ENGINE], [_PRE_ENGINE])
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS, [],
                                    [_PRE_ENGINE])
PARAM_SCHEDULERS = _child(mmpretrain_registry.PARAM_SCHEDULERS, [], [_PRE_ENGINE])
DATASETS = _child(mmpretrain_registry.DATASETS, [_DATASETS], [_PRE_DATASETS])
DATA_SAMPLERS = _child(mmpretrain_registry.DATA_SAMPLERS, [_DATASETS], [_PRE_DATASETS])
TRANSFORMS = _child(mmpretrain_registry.TRANSFORMS, [_DATASETS], [_PRE_DATASETS])
# datasets too: the data preprocessor that decodes JPEGs on the device lives with the decoders
MODELS = _child(mmpretrain_registry.MODELS, [_MODELS, _DATASETS], [_PRE_MODELS])
MODEL_WRAPPERS = _child(mmpretrain_registry.MODEL_WRAPPERS, [], [_PRE_MODELS])
WEIGHT_INITIALIZERS = _child(mmpretrain_registry.WEIGHT_INITIALIZERS, [], [_PRE_MODELS])
TASK_UTILS = _child(mmpretrain_registry.TASK_UTILS, [], [_PRE_MODELS])
METRICS = _child(mmpretrain_registry.METRICS, [], [_PRE_EVAL])
EVALUATORS = _child(mmpretrain_registry.EVALUATORS, [], [_PRE_EVAL])
VISUALIZERS = _child(mmpretrain_registry.VISUALIZERS, [], [_PRE_VIS])
VISBACKENDS = _child(mmpretrain_registry.VISBACKENDS, [], [_PRE_VIS])

__all__ = [
    'SCOPE', 'scoped', 'bare_type', 'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS',
    'LOG_PROCESSORS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'TASK_UTILS', 'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'register_all_modules'
]


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module of resnest_mm and mmpretrain so their types are registered.

    Args:
        init_default_scope (bool): Also make ``resnest_mm`` the current default scope, as a config
            with ``default_scope = 'resnest_mm'`` would. Defaults to True.
    """
    import importlib

    for name in (_MODELS, _ENGINE, _DATASETS, _PRE_MODELS, _PRE_DATASETS, _PRE_ENGINE,
                 _PRE_EVAL, _PRE_VIS):
        importlib.import_module(name)
    if init_default_scope and DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance(SCOPE, scope_name=SCOPE)
