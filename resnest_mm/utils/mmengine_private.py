"""Every private member of mmengine (and of mmpretrain, built on it) that resnest_mm still uses.

mmengine keeps no promise about names that start with an underscore: an upgrade may rename
them, drop them or change what they mean, and nothing would say so until a run misbehaves.
So no other module of resnest_mm touches them: each is reached through one small function
here, named after what it does, and ``tests/test_utils/test_mmengine_private.py`` checks each
one against the installed mmengine (present, and still meaning what we rely on). When an
upgrade breaks one of those tests, this module is the one place to change.

What mmengine knows and we would otherwise copy is asked of it here too: the keys of its
default hooks (:func:`default_hook_keys`), read from ``Runner.register_default_hooks`` itself.

A private member is used only where no public API does the same; those replaced by public ones
(``BaseDataPreprocessor.device``, ``BaseDataset.full_init``, which returns at once when the data
set is already loaded) are not listed.
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any, Dict, Optional, Tuple

from .errors import ExplainedImportError

__all__ = ['SUBCLASS_MEMBERS', 'compile_model_step', 'config_path', 'default_hook_keys',
           'random_dataset_index', 'randomness_cfg', 'set_dataset_classes',
           'set_inference_meta', 'set_loop_position', 'shutdown_loader_workers']

#: Private members that our subclasses of mmengine's classes read, write or override as their
#: own (a subclass overriding ``Runner.load_or_resume`` reads the flags that method reads; a
#: function here would only hide that). Listed so that this module stays the one place that
#: knows every private name; each is checked against the installed mmengine by the tests.
SUBCLASS_MEMBERS: Dict[str, Tuple[str, ...]] = {
    # ResNeStRunner.load_or_resume / _lock_work_dir / wrap_model / _end_data_workers
    'mmengine.runner.Runner': ('_has_loaded', '_resume', '_load_from', '_train_loop',
                               '_val_loop', '_test_loop'),
    # AtomicCheckpointHook overrides the one method every periodic save goes through
    'mmengine.hooks.CheckpointHook': ('_save_checkpoint_with_step', ),
    # ApexAmpOptimWrapper.backward counts as OptimWrapper.backward does
    'mmengine.optim.OptimWrapper': ('_inner_count', ),
    # CpuAmpOptimWrapper keeps the scaler's update argument as AmpOptimWrapper does
    'mmengine.optim.AmpOptimWrapper': ('_scale_update_param', ),
}


def _literal(node: ast.expr) -> Any:
    """A literal, where ``dict(key=literal, ...)`` counts as one (mmengine writes its configs
    so)."""
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict' and \
            not node.args and all(kw.arg for kw in node.keywords):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    return ast.literal_eval(node)


@functools.cache  # parses mmengine's source: once per process
def default_hook_keys() -> Dict[str, dict]:
    """mmengine's default hooks, ``{key: hook config}``, as ``Runner.register_default_hooks``
    defines them (``runtime_info``, ``timer``, ``sampler_seed``, ``logger``,
    ``param_scheduler``, ``checkpoint`` in mmengine 0.10).

    mmengine lists them only in that method's body (a local ``default_hooks = dict(...)``), and
    only these keys may be set to None in a config (mmengine pops them; any other None fails
    its assertion). Read from the method's source, so an mmengine that adds or renames one is
    followed without a copy here.

    Raises:
        ImportError: the method no longer defines ``default_hooks`` as a ``dict(...)`` call of
            literal keyword arguments (mmengine changed it; this function must follow).
    """
    from mmengine.runner import Runner

    source = textwrap.dedent(inspect.getsource(Runner.register_default_hooks))
    for node in ast.walk(ast.parse(source)):
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        value = getattr(node, 'value', None)
        if isinstance(target, ast.Name) and target.id == 'default_hooks' and \
                isinstance(value, ast.Call) and getattr(value.func, 'id', None) == 'dict':
            return _literal(value)
    raise ExplainedImportError(
        'mmengine.runner.Runner.register_default_hooks no longer defines its default hooks as '
        'default_hooks = dict(...); install the mmengine of requirements/runtime.txt, or update '
        'resnest_mm.utils.mmengine_private.default_hook_keys for this one')


def compile_model_step(runner: Any, step: str) -> None:
    """``torch.compile`` the model's ``step`` (``'train_step'``, ``'test_step'``) as the runner's
    ``compile`` config asks, exactly as ``Runner.train``/``Runner.test`` do before their loop
    (mmengine's private ``Runner._maybe_compile``; nothing when ``compile`` is unset or False).
    For code that runs the model's steps outside mmengine's loops (the benchmark)."""
    runner._maybe_compile(step)


def config_path(name: str, including_file: str) -> Tuple[str, Optional[str]]:
    """The file and package scope a config's ``_base_`` entry ``name`` names, found as
    ``Config.fromfile`` finds it (relative to ``including_file``, or ``package::path`` through
    an installed package): mmengine's private ``Config._get_cfg_path``."""
    from mmengine.config import Config

    return Config._get_cfg_path(name, including_file)


def set_dataset_classes(dataset: Any, classes: Tuple[str, ...]) -> None:
    """Give a data set found while loading its samples its class names (``metainfo['classes']``).

    mmengine's ``BaseDataset.metainfo`` returns a copy, and the data set's meta information is
    fixed at construction; a folder data set learns its classes only in ``load_data_list``, as
    mmpretrain's ``CustomDataset`` does, by writing the private ``_metainfo``.
    """
    dataset._metainfo['classes'] = tuple(classes)


def random_dataset_index(dataset: Any) -> int:
    """The index of another sample to try after one the pipeline dropped, drawn as mmengine's
    ``BaseDataset.__getitem__`` draws it (private ``_rand_another``: numpy's global RNG, so the
    draw follows the sample's seed and a resumed run draws the same one)."""
    return dataset._rand_another()


def set_inference_meta(model: Any, cfg: Any, dataset_meta: Dict[str, Any]) -> None:
    """Attach the config and data set meta information to a model built for inference, under
    the names mmpretrain's ``get_model`` uses and its inferencers read (``model._config``,
    ``model._dataset_meta``), and under the public ``cfg`` / ``dataset_meta``."""
    model.cfg = cfg
    model._config = cfg
    model.dataset_meta = dataset_meta
    model._dataset_meta = dataset_meta


def set_loop_position(loop: Any, epoch: int, iteration: int) -> None:
    """Put a train loop at ``epoch`` epochs and ``iteration`` iterations done.

    mmengine's loops expose ``epoch``/``iter`` read-only and keep them in the private
    ``_epoch``/``_iter``, which ``Runner.resume`` writes and ``run_epoch``/``run_iter``
    advance; a resumable loop must set them too.
    """
    loop._epoch, loop._iter = int(epoch), int(iteration)


def randomness_cfg(runner: Any) -> Dict[str, Any]:
    """The ``randomness`` settings the runner called ``set_randomness`` with (seed,
    ``diff_rank_seed``, ``deterministic``), as mmengine's ``Runner.resume`` reads and updates
    them (private ``_randomness_cfg``; ``runner.cfg`` is empty for a runner built from keyword
    arguments). The dict itself, so that an update is seen by a later ``set_randomness``."""
    return runner._randomness_cfg


def shutdown_loader_workers(loader: Any) -> bool:
    """End the worker processes of a torch ``DataLoader`` now; True when there were some. A
    later iteration of the loader starts new ones.

    torch has no public close: persistent workers live in the loader's private ``_iterator``
    until it is garbage collected, and ``_shutdown_workers`` is what that collection calls.
    Collected as part of a reference cycle (a Runner holds its loaders in one), that call
    waits 5 s for each worker, which never gets the message to stop (pytorch#64766): called
    here, it takes milliseconds. The loader then forgets the ended iterator, which it would
    otherwise reuse (``_reset``) at its next iteration.
    """
    iterator = getattr(loader, '_iterator', None)
    if iterator is None or not hasattr(iterator, '_shutdown_workers'):
        return False
    iterator._shutdown_workers()
    loader._iterator = None
    return True
