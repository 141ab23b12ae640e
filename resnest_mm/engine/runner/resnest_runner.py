"""``ResNeStRunner``: mmengine's Runner as released, extended where it falls short for us.

Every resnest_mm config selects it (``runner_type = 'resnest_mm.ResNeStRunner'`` in
``configs/_base_/default_runtime.py``). Nothing of mmengine or torch is modified: each gap is
filled by overriding one Runner method, by a component registered in our scope, or through an
mmengine/torch extension point. The gaps, in mmengine 0.10.7 and torch 2.14:

* :meth:`setup_env` - ``init_dist`` calls ``torch.cuda.set_device`` for slurm and mpi on any
  device (and for pytorch on CPU) and keeps the configured ``nccl`` where there is no GPU: the
  process group is set up by :func:`~.process_group.init_process_group` instead (hccl / nccl /
  gloo by device, ``torch.npu.set_device`` on Ascend, nothing on CPU), for every launcher.
* :meth:`wrap_model` - DDP is given ``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU
  module: on CPU the wrapper is built without it. mmengine wraps the model before the optimizer
  exists, but apex's ``amp.initialize`` needs the optimizer and a model not yet in DDP: where
  apex is installed, a distributed training run's DDP wrapper is built by
  :meth:`build_optim_wrapper`, once, after apex.
* :meth:`build_optim_wrapper` - mmengine replaces whatever wrapper the config names with
  ``AmpOptimWrapper`` on Ascend SoCs below 220, without a word, and has no apex set-up in
  Ascend's order: the wrapper :func:`resnest_mm.engine.amp_policy.decide` chooses is built once
  (mmengine's own constructor; the configured one, or the one ``ApexAmpHook`` asks for), apex is
  initialised on the bare model, and what the SoC computes is logged; ``AmpOptimWrapper`` on
  CPU, which mmengine asserts against, is refused with a sentence naming ``CpuAmpOptimWrapper``.
* :meth:`register_hooks` - the safety hooks (``NonFiniteLossHook``, ``UnreadableImageHook``,
  ``LabelRangeHook``, ``ProgressBarHook``) are part of the runner's defaults, so no config
  loses them by re-listing ``custom_hooks``; a ``None`` under their keys switches one off
  (logged), which mmengine would refuse with an assertion.
* :meth:`load_checkpoint` / :meth:`load_weights` - every load (``load_from``, ``--resume``,
  testing) goes through :func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file` (data only,
  bounded, interruptible, digest and CRC-32 verified, one sentence for a damaged or refused
  file; ``unsafe_load=True`` in the config is the explicit opt-in; a model name or URL, e.g.
  ``load_from='resnest50'``, is first downloaded once and verified by
  :func:`resnest_mm.hub.weights_file`); the weights must fit the model (keys and shapes) or the
  run stops naming them, instead of mmengine's partial load with a warning.
* :meth:`resume` / :meth:`load_or_resume` - one call,
  :func:`resnest_mm.engine.loops.resume` (its docstring gives the order of its steps): the
  newest verified checkpoint when no path is given, the run state planned and applied.
* :meth:`save_checkpoint` / :meth:`call_hook` - checkpoints of local work dirs are written
  through :class:`~resnest_mm.utils.atomic_local_backend.AtomicLocalBackend` (atomic, SHA-256),
  and the message hub's ``HistoryBuffer`` objects go in as tensors (mmengine pickles their
  methods, which torch's weights-only loading refuses).
* :meth:`setup_env` / :meth:`train` - one training run per work dir
  (:class:`~.work_dir_lock.WorkDirLock`), claimed before mmengine's ``__init__`` writes its log
  folder and config dump into it, held until training ends.
* :meth:`call_hook` - SIGTERM, SIGUSR1 and SIGINT (:class:`~.stop_signals.StopSignals`): at the
  iteration all ranks agree on, :func:`resnest_mm.engine.loops.stop` saves a checkpoint (the
  checkpoint hook's ``on_stop_signal``, else the shared save) and stops with one sentence.
"""
from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from types import SimpleNamespace
from typing import Dict, List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.dist import broadcast_object_list, is_distributed
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.model import convert_sync_batchnorm, is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import BaseLoop, Runner
from mmengine.runner.checkpoint import load_state_dict
from torch.optim import Optimizer

from ... import device
from ...datasets.augment_on_device_preprocessor import check_device_steps
from ...hub import weights_file
from ...registry import MODEL_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS, RUNNERS, bare_type, scoped
from ...utils import atomic_local_backend, check_writable_folder
from ...utils.checkpoint_io import (
    CheckpointError,
    check_fits,
    load_checkpoint_file,
    plain_message_hub,
)
from ...utils.errors import (
    ExplainedError,
    ExplainedOSError,
    ExplainedRuntimeError,
    ExplainedValueError,
)
from ...utils.fileio import NO_ROOM
from ...utils.log_file_handler import LogFileHandler
from ...utils.mmengine_private import default_hook_keys, shutdown_loader_workers
from .. import amp_policy, loops
from ..loops import bare_model
from .memory_format import memory_format, to_memory_format
from .process_group import init_process_group
from .stop_signals import StopSignals
from .work_dir_lock import LOCK_NAME, WorkDirLock

# The one list of the hooks every run of ours has unless a config sets their key to None
# (configs/_base_/default_runtime.py gives them settings under the same keys; the tests import
# this list). Scoped names: they are built in the config's default scope, which may be
# mmpretrain's.
SAFETY_HOOKS: Dict[str, dict] = dict(
    non_finite_loss=dict(type=scoped('NonFiniteLossHook')),
    unreadable_images=dict(type=scoped('UnreadableImageHook')),
    label_range=dict(type=scoped('LabelRangeHook')),
    progress_bar=dict(type=scoped('ProgressBarHook')),
)


def _hook_types(hooks) -> List[str]:
    """The type names of hook configs or built hooks (without our scope prefix)."""
    types = []
    for hook in hooks or []:
        kind = hook.get('type') if isinstance(hook, dict) else type(hook)
        types.append(bare_type(kind) if isinstance(kind, str)
                     else getattr(kind, '__name__', str(kind)))
    return types


def _class_differences(trained: List[str], data: List[str], shown: int = 3) -> str:
    """The first differences between two class lists, in words."""
    if sorted(trained) == sorted(data):
        first = next(i for i, (a, b) in enumerate(zip(trained, data)) if a != b)
        return (f'the same names in another order (index {first}: {trained[first]!r} in the '
                f'checkpoint, {data[first]!r} in the data)')
    parts = []
    data_set, trained_set = set(data), set(trained)
    only_trained = [c for c in trained if c not in data_set]
    only_data = [c for c in data if c not in trained_set]
    if only_trained:
        more = f' and {len(only_trained) - shown} more' if len(only_trained) > shown else ''
        parts.append(f'only the checkpoint has {only_trained[:shown]}{more}')
    if only_data:
        more = f' and {len(only_data) - shown} more' if len(only_data) > shown else ''
        parts.append(f'only the data has {only_data[:shown]}{more}')
    return ', '.join(parts)


# Files a run writes into its work dir under fixed names (the lock, mmengine's pointer to the
# last checkpoint, the summary): a folder under one of these names is refused at the start.
WORK_DIR_FILES = (LOCK_NAME, 'last_checkpoint', 'summary.json')

# Work-dir locks this process holds, by real path: a runner built but never trained keeps its
# lock until the process ends, and a later runner of the same process takes it over then.
_PROCESS_LOCKS: Dict[str, WorkDirLock] = {}


def _process_lock(work_dir: str, said: List[tuple]) -> WorkDirLock:
    """The work dir's lock for this process (taken, or taken over from an earlier runner of
    this process); what taking it had to say is appended to ``said`` as (level, message)."""
    key = os.path.realpath(work_dir)
    lock = _PROCESS_LOCKS.get(key)
    if lock is None or not lock.held:
        lock = WorkDirLock(work_dir)
        lock.acquire(SimpleNamespace(info=lambda m: said.append((logging.INFO, m)),
                                     warning=lambda m: said.append((logging.WARNING, m))))
        _PROCESS_LOCKS[key] = lock
    return lock


def _release_process_lock(lock: WorkDirLock) -> None:
    lock.release()
    for key, held in list(_PROCESS_LOCKS.items()):
        if held is lock:
            del _PROCESS_LOCKS[key]


@RUNNERS.register_module()
class ResNeStRunner(Runner):
    """mmengine's ``Runner`` with the overrides listed in this module's docstring.

    Arguments are mmengine's. Config keys it reads besides mmengine's: ``unsafe_load``
    (unpickle checkpoints that are not plain data; only for trusted files),
    ``allow_other_classes`` (test a checkpoint on data whose class names differ from those it
    was trained on), ``lock_work_dir`` (False: no work-dir lock; tools/test.py) and
    ``channels_last`` (the model and its input batches in NHWC, whatever the model:
    ``--channels-last``; see :mod:`~.memory_format`).
    """

    _work_dir_lock: Optional[WorkDirLock] = None
    # the shell command that continues this run (tools/train.py sets it from its own command
    # line); quoted in the sentence a stop signal ends the run with
    continue_command: Optional[str] = None
    _testing = False
    loop_started = False

    def __init__(self, *args, **kwargs) -> None:
        self._stop_signals = StopSignals()
        self._lock_said: List[tuple] = []
        super().__init__(*args, **kwargs)

    # --- process group and model wrapper ------------------------------------------------------

    def setup_env(self, env_cfg: Dict) -> None:
        if self.distributed and not is_distributed():
            init_process_group(self.launcher, env_cfg.get('dist_cfg') or {})
        super().setup_env(env_cfg)  # the group exists: mmengine does not initialise it again
        # mmengine's __init__ writes the log folder, the log and the config dump right after
        # this: the work dir is claimed first, so a refused run leaves nothing there
        self._lock_work_dir()

    def _lock_work_dir(self) -> None:
        """Take the work dir's :class:`~.work_dir_lock.WorkDirLock` (rank 0) for a runner that
        will train (``lock_work_dir``, default: whenever ``train_cfg`` is given; tools/test.py
        sets it False), and refuse on every rank together when another run holds it."""
        if self._train_loop is None or not self.cfg.get('lock_work_dir', True):
            return
        refusal = [None]
        if self.rank == 0:
            try:
                check_writable_folder(self.work_dir, 'the work dir', WORK_DIR_FILES)
                self._work_dir_lock = _process_lock(self.work_dir, self._lock_said)
            except ExplainedError as exc:
                refusal[0] = str(exc)
        if self.distributed:
            broadcast_object_list(refusal)
        if refusal[0] is not None:
            raise ExplainedRuntimeError(refusal[0])

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for handler in list(logger.handlers):  # a full disk: one sentence, not a traceback each
            if type(handler) is logging.FileHandler:
                logger.addHandler(LogFileHandler.replacing(handler))
                logger.removeHandler(handler)
                handler.close()
        for level, message in self._lock_said:  # said while the lock was taken, logged now
            logger.log(level, message)
        self._lock_said.clear()
        return logger

    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model):
        if self.distributed and self._train_loop is not None and not is_model_wrapper(model) \
                and amp_policy.model_wrapper_after_optimizer():
            # apex's amp.initialize must see the bare model, and needs the optimizer, which
            # mmengine builds in train(): build_optim_wrapper wraps the model, once, after it
            return model.to(device.device_type())
        return self._build_model_wrapper(model_wrapper_cfg, model)

    def _build_model_wrapper(self, model_wrapper_cfg: Optional[Dict], model):
        """mmengine's ``wrap_model``, with a DDP wrapper without device ids on the CPU."""
        if not self.distributed or is_model_wrapper(model) or device.takes_device_ids():
            return super().wrap_model(model_wrapper_cfg, model)
        model = model.to(device.device_type())
        sync_bn = self.cfg.get('sync_bn', None)
        if sync_bn is not None:
            model = convert_sync_batchnorm(model, sync_bn)
        cfg = dict(model_wrapper_cfg) if model_wrapper_cfg is not None else dict(
            broadcast_buffers=False,
            find_unused_parameters=self.cfg.get('find_unused_parameters', False))
        cfg.setdefault('type', 'MMDistributedDataParallel')
        return MODEL_WRAPPERS.build(cfg, default_args=dict(module=model))  # no device_ids

    def build_model(self, model):
        model = super().build_model(model)
        # work the loaders leave to the data preprocessor (lighting noise, CHW order)
        for loop, loader in ((self._train_loop, 'train_dataloader'),
                             (self._val_loop, 'val_dataloader'),
                             (self._test_loop, 'test_dataloader')):
            if loop is not None:
                check_device_steps(loader, self.cfg.get(loader),
                                   getattr(model, 'data_preprocessor', None))
        # --channels-last: weights and batches NHWC, whatever the model (decided in memory_format)
        return to_memory_format(model, memory_format(bool(self.cfg.get('channels_last'))))

    # --- optimizer wrapper ----------------------------------------------------------------------

    def build_optim_wrapper(self, optim_wrapper):
        wrapper = None
        if isinstance(optim_wrapper, (dict, ConfigDict, Config)):
            optimizer = optim_wrapper.get('optimizer', None)
            if not isinstance(optimizer, Optimizer) and \
                    (optimizer is not None or 'constructor' in optim_wrapper):
                wrapper = self._build_configured_wrapper(optim_wrapper)
        if wrapper is None:
            wrapper = super().build_optim_wrapper(optim_wrapper)
        if self.distributed and not is_model_wrapper(self.model):  # deferred by wrap_model
            self.model = self._build_model_wrapper(self.cfg.get('model_wrapper_cfg'), self.model)
        return wrapper

    def _build_configured_wrapper(self, optim_wrapper) -> OptimWrapper:
        """mmengine's constructor path, building the wrapper the AMP policy decides
        (:func:`~resnest_mm.engine.amp_policy.decide`: the configured type, or the one
        ``ApexAmpHook`` asks for) and setting up apex AMP on the bare model."""
        plan = amp_policy.decide(optim_wrapper, amp_policy.apex_request(self.hooks))
        if plan.note:
            self.logger.warning(plan.note)
        cfg = plan.optim_wrapper_cfg(copy.deepcopy(optim_wrapper))
        constructor = cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
        paramwise_cfg = cfg.pop('paramwise_cfg', None)
        build = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type=constructor, optim_wrapper_cfg=cfg, paramwise_cfg=paramwise_cfg))
        wrapper = build(self.model)
        if plan.apex is not None:
            if is_model_wrapper(self.model):
                raise ExplainedValueError(
                    f'ApexAmpHook: the model came already wrapped ({type(self.model).__name__}), '
                    'and apex must initialise it before any DDP wrapper: give the runner the '
                    'bare model (a config dict), and it builds the wrapper after apex.')
            self.model = wrapper.initialize_amp(self.model)
        return wrapper

    # --- hooks ------------------------------------------------------------------------------

    def register_hooks(self, default_hooks: Optional[Dict] = None,
                       custom_hooks: Optional[List] = None) -> None:
        merged = dict(SAFETY_HOOKS)
        merged.update(default_hooks or {})
        custom = _hook_types(custom_hooks)
        for name, default in SAFETY_HOOKS.items():
            kind = bare_type(default['type'])
            # the same hook elsewhere (custom_hooks, another default_hooks key; bare or scoped
            # type name) replaces the one under this key, whatever the base config set there:
            # two of them would each apply their own settings, the strictest winning
            elsewhere = kind in custom or kind in _hook_types(
                [h for k, h in merged.items() if k != name and h is not None])
            if merged.get(name) is None:
                if not elsewhere:
                    self.logger.warning(f'default_hooks.{name}=None: the {default["type"]} '
                                        'safety net is off for this run')
            elif elsewhere:
                merged[name] = None  # the config lists it elsewhere: register it once
        # a None under one of mmengine's own default keys is mmengine's to drop; under any
        # other key mmengine would fail an assertion, so ours are left out here
        mmengine_defaults = default_hook_keys()
        super().register_hooks(
            {k: v for k, v in merged.items() if v is not None or k in mmengine_defaults},
            custom_hooks)

    def call_hook(self, fn_name: str, **kwargs) -> None:
        if fn_name == 'before_save_checkpoint':
            checkpoint = kwargs['checkpoint']
            checkpoint['message_hub'] = plain_message_hub(checkpoint['message_hub'])
        try:
            super().call_hook(fn_name, **kwargs)
        except OSError as exc:
            if isinstance(exc, ExplainedError) or exc.errno not in NO_ROOM:
                raise
            raise self._no_room_error(fn_name, exc) from None
        for handler in self.logger.handlers:
            failure = getattr(handler, 'failure', None)
            if isinstance(handler, LogFileHandler) and failure is not None:
                handler.failure = None
                raise self._no_room_error(fn_name, OSError(failure.errno, failure.strerror,
                                                           handler.baseFilename))
        if fn_name in ('before_train', 'before_test'):
            self.loop_started = True  # from here on an error is the run's, not the config's
        elif fn_name == 'after_train_iter':  # every loop's iteration boundary
            self._stop_if_agreed()
        elif fn_name == 'after_val_iter' and self._stop_signals.installed:
            self._stop_if_agreed(validating=kwargs.get('batch_idx'))  # validation in training

    def _no_room_error(self, fn_name: str, exc: OSError) -> ExplainedOSError:
        """A hook's write (mmengine's log and ``scalars.json``, a summary, a user's file) found
        the disk full: one sentence naming the work dir's disk and how to go on, instead of an
        ``OSError`` traceback. The checkpoints already written are complete (atomic)."""
        where = (f'Iteration {self.iter + 1} (epoch {self.epoch + 1})'
                 if fn_name == 'after_train_iter' else f'At {fn_name}')
        try:
            free = f'{shutil.disk_usage(self.work_dir).free:,}'
        except OSError:
            free = 'no'
        what = f' writing {exc.filename}' if exc.filename else ''
        good = self.message_hub.get_info('last_ckpt') or 'none yet'
        command = self.continue_command or 'tools/train.py CONFIG --resume'
        return ExplainedOSError(
            f'{where}: no space left on the disk of the work dir {self.work_dir}{what} '
            f'({free} bytes free; {exc.strerror}) while the run wrote its log, scalars.json or '
            f'another file of a hook. The checkpoints written so far are complete (the newest: '
            f'{good}). Free space on that disk, or choose another --work-dir, then continue '
            f'with: {command}')

    # --- loading --------------------------------------------------------------------------------

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):  # noqa: B006 (mmengine's)
        filename = weights_file(filename)  # load_from='resnest50' or a URL: a verified download
        checkpoint = load_checkpoint_file(filename, map_location=map_location,
                                          unsafe=bool(self.cfg.get('unsafe_load', False)))
        if not isinstance(checkpoint, dict):
            raise CheckpointError(f'{filename} holds a {type(checkpoint).__name__}, not a '
                                  'checkpoint (a dict with a state_dict)')
        self.load_weights(checkpoint, filename, revise_keys)
        return checkpoint

    def load_weights(self, checkpoint: dict, filename: str,
                     revise_keys: list = [(r'^module.', '')]) -> None:  # noqa: B006
        """Load the model's part of ``checkpoint`` (read from ``filename``): the
        ``after_load_checkpoint`` hooks adapt it first, then its keys and shapes must fit the
        model (the classifier may be missing when fine-tuning trains a new one) and, when
        testing, its classes the test data's."""
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = bare_model(self.model)  # (no DDP, no --tta wrapper)
        state_dict = checkpoint.get('state_dict', checkpoint)
        state_dict = {k: v for k, v in state_dict.items() if k != '_metadata'}
        for pattern, replacement in revise_keys:
            state_dict = {re.sub(pattern, replacement, k): v for k, v in state_dict.items()}
        check_fits(model.state_dict(), state_dict, filename,
                   allowed_missing=self._reinitialised_prefixes())
        if self._testing:
            self._check_classes(checkpoint, filename)
        load_state_dict(model, state_dict, strict=False, logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')

    def test(self) -> dict:
        self._testing = True
        try:
            return super().test()
        finally:
            self._testing = False
            self._end_data_workers()

    def val(self) -> dict:
        try:
            return super().val()
        finally:
            self._end_data_workers()

    def _end_data_workers(self) -> None:
        """End the worker processes of the loops built so far, once a loop has returned or
        raised. What torch lacks: a DataLoader has no public close, and its persistent workers
        live on until the loader is garbage collected; collected with the runner (a reference
        cycle), each takes 5 s to end (pytorch#64766), which a process that goes on (a
        notebook, the next runner, a test suite) waits for. Iterating a loader again starts
        new workers."""
        for loop in (self._train_loop, self._val_loop, self._test_loop):
            if isinstance(loop, BaseLoop):  # built: a config dict has no workers yet
                shutdown_loader_workers(loop.dataloader)

    def _check_classes(self, checkpoint: dict, filename: str) -> None:
        """Refuse to score a checkpoint on data whose classes differ from those it was trained
        on (``meta['dataset_meta']['classes']``, which mmengine records at every save): class
        folders renamed, added or ordered otherwise would be scored against other labels,
        silently. ``allow_other_classes=True`` (``--allow-other-classes``) lets it run, with a
        warning."""
        meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
        trained = (meta.get('dataset_meta') or {}).get('classes')
        dataset = self.test_dataloader.dataset
        data = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if not trained or not data:
            return  # nothing recorded (a converted or foreign checkpoint): nothing to compare
        trained, data = [str(c) for c in trained], [str(c) for c in data]
        if trained == data:
            return
        where = getattr(dataset, 'data_root', '') or type(dataset).__name__
        message = (f'{filename} was trained on {len(trained)} classes and the test data '
                   f'({where}) has {len(data)}; {_class_differences(trained, data)}. Its '
                   'predictions would be scored against other labels.')
        if self.cfg.get('allow_other_classes'):
            self.logger.warning(message + ' Evaluating anyway (allow_other_classes=True).')
            return
        raise ExplainedValueError(
            message + ' Evaluate on data with the checkpoint\'s classes, or pass '
            '--allow-other-classes (allow_other_classes=True in the config) if the labels do '
            'match although the names differ.')

    def _reinitialised_prefixes(self) -> tuple:
        """Keys a checkpoint may lack: the classifier, when fine-tuning trains a new one (a
        hook with ``head_mismatch='reinit'``, ``CheckpointAdapterHook``, dropped it)."""
        reinit = any(getattr(h, 'head_mismatch', None) == 'reinit' for h in self.hooks)
        return ('head.', ) if reinit else ()

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True, map_location='default') -> None:
        loops.resume(self, filename, resume_optimizer=resume_optimizer,
                     resume_param_scheduler=resume_param_scheduler, map_location=map_location)

    def load_or_resume(self) -> None:
        if self._has_loaded:
            return
        if self._resume:  # --resume PATH sets load_from; --resume alone the newest checkpoint
            loops.resume(self, self._load_from or loops.AUTO,
                         fallback=self.cfg.get('resume_fallback'))
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
        else:
            return
        self._has_loaded = True

    # --- saving ---------------------------------------------------------------------------------

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args=None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        if file_client_args is None and backend_args is None and \
                isinstance(get_file_backend(out_dir), LocalBackend):
            backend_args = dict(backend=atomic_local_backend.NAME)
        super().save_checkpoint(out_dir, filename, file_client_args=file_client_args,
                                save_optimizer=save_optimizer,
                                save_param_scheduler=save_param_scheduler, meta=meta,
                                by_epoch=by_epoch, backend_args=backend_args)

    # --- training, and stopping at a signal --------------------------------------------------

    def train(self):
        lock = self._work_dir_lock
        if lock is None and self.rank == 0:  # released by an earlier train() of this runner
            said: List[tuple] = []
            lock = self._work_dir_lock = _process_lock(self.work_dir, said)
            for level, message in said:
                self.logger.log(level, message)
        self._stop_signals.install()
        try:
            return super().train()
        finally:
            self._stop_signals.restore()
            self._end_data_workers()
            if lock is not None:
                _release_process_lock(lock)
                self._work_dir_lock = None

    def _stop_if_agreed(self, validating: Optional[int] = None) -> None:
        """After an iteration's hooks (every rank): if a stop signal reached any rank, save and
        stop (:func:`resnest_mm.engine.loops.stop`, which raises ``StoppedBySignalError``)."""
        signum = self._stop_signals.agreed()
        if signum is not None:
            loops.stop(self, signum, validating=validating)
