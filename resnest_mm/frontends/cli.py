"""What ``tools/train.py`` and ``tools/test.py`` do, in the package so tests reach it.

The flags are mmpretrain's; :func:`merge_train_args` / :func:`merge_test_args` hold all of the
command-line-to-config logic, and :func:`train` / :func:`test` build the MMEngine Runner and run.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import os.path as osp
import shlex
import shutil
import sys
from types import SimpleNamespace
from typing import Iterator, List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner import Runner

from .. import device
from ..datasets.device_decode import apply_decode_on_device
from ..engine import amp_policy
from ..engine.runner.process_group import leave_process_group
from ..registry import scoped
from ..utils.cfg_options import CfgOptionsAction
from ..utils.errors import ExplainedError, ExplainedOSError, ExplainedValueError
from ..utils.extras import require
from ..utils.fileio import NO_ROOM
from . import preflight
from .config_loader import load_config


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='where logs, checkpoints and summary.json go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config keys, e.g. train_dataloader.batch_size=64')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (dist_*.sh set pytorch)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='unpickle checkpoints that are not plain data (they can run code): '
                        'only for a file you trust')
    # torchrun passes --local-rank on old torch versions
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train a ResNeSt classifier')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='PATH',
                        help='resume from PATH, or from the latest checkpoint of the work dir '
                        'when no PATH is given')
    parser.add_argument('--amp', action='store_true',
                        help="mixed precision in the device's flavour (bf16 autocast on CPU, "
                        'fp16 with dynamic loss scaling on GPU/NPU)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                        help='with --amp: the autocast dtype instead of the device\'s (bf16 on '
                        'a GPU or a 910B NPU; the CPU takes bf16 only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the real global batch over auto_scale_lr.'
                        'base_batch_size')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also write TensorBoard event files (loss, lr, accuracy, fps) to '
                        'WORK_DIR/<timestamp>/vis_data; view with tensorboard --logdir WORK_DIR')
    speed = parser.add_argument_group('speed switches')
    speed.add_argument('--channels-last', action='store_true',
                       help='model and input batches in NHWC (the config key channels_last=True): '
                       'faster convolutions on tensor cores and oneDNN; same results')
    speed.add_argument('--compile', action='store_true',
                       help="torch.compile the train step (MMEngine's cfg.compile)")
    speed.add_argument('--prof', type=int, nargs='?', const=10, default=None, metavar='ITERS',
                       help="profile the first ITERS iterations (default 10): PyTorch's "
                       'profiler (a table of the slowest operators on stdout, '
                       'WORK_DIR/trace.json for chrome://tracing), the CANN profiler on Ascend '
                       "(the seed's --prof)")
    speed.add_argument('--decode-on-device', action='store_true',
                       help='decode and augment the training JPEGs on the accelerator (nvJPEG, '
                       'Ascend DVPP); the loader workers only read files (config: '
                       'decode_on_device = True)')
    _common_args(parser)
    return parser


def test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Evaluate a ResNeSt checkpoint')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint to evaluate: a file, a model name '
                        '(resnest50) or a URL (docs/models.md)')
    parser.add_argument('--out', help='dump every prediction to this pickle file')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation as in mmpretrain's tools/test.py: the "
                        "config's tta_model and tta_pipeline, by default the mean score of "
                        'each image and its horizontal flip (AverageClsScoreTTA)')
    parser.add_argument('--allow-other-classes', action='store_true',
                        help="evaluate although the data's class names differ from those the "
                        'checkpoint was trained on (refused otherwise)')
    _common_args(parser)
    return parser


def _common_merge(cfg: Config, args: argparse.Namespace) -> Config:
    cfg.setdefault('runner_type', scoped('ResNeStRunner'))
    if args.unsafe_load:
        cfg.unsafe_load = True
    if args.cfg_options:
        preflight.check_cfg_options(cfg, args.cfg_options)  # mmengine would add a typo silently
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.launcher != 'none':
        device.check_processes_per_node()
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # The process-group backend follows the device unless the config names one.
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.get('dist_cfg') or {}
    dist_cfg.setdefault('backend', device.dist_backend())
    env_cfg['dist_cfg'] = dist_cfg
    return cfg


def merge_train_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/train.py``'s flags to ``cfg`` (returned for chaining)."""
    cfg = _common_merge(cfg, args)
    if args.amp_dtype and not args.amp:
        raise ExplainedValueError('--amp-dtype chooses the dtype of --amp: pass both')
    if args.amp:
        print_log(amp_policy.apply_amp_flag(cfg, args.amp_dtype), logger='current')
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.tensorboard:
        enable_tensorboard(cfg)
    if args.channels_last:
        cfg.channels_last = True  # the runner decides and converts (engine/runner/memory_format)
    if args.compile:
        cfg.compile = True
    if getattr(args, 'decode_on_device', False):
        cfg.decode_on_device = True
    if cfg.get('decode_on_device'):
        apply_decode_on_device(cfg)
    if args.prof is not None:
        if args.prof < 1:
            raise ExplainedValueError(f'--prof {args.prof}: profile at least 1 iteration')
        cfg.setdefault('custom_hooks', [])
        cfg.custom_hooks.append(device.profiler_hook(args.prof, cfg.work_dir))
    restarted = restart_count() > 0
    if restarted:
        # a group restarted by torchrun --max-restarts, or a job requeued by Slurm, continues
        # from the work dir whatever the command said (its --resume PATH may be pruned by now)
        print_log(f'restart {restart_count()} of this job: resuming from the newest complete '
                  'checkpoint of the work dir', logger='current')
    if args.resume == 'auto' or restarted:
        # where to start when the work dir has no checkpoint yet: the command's --resume PATH,
        # else the config's load_from (fine-tuning weights), else from scratch
        if args.resume not in (None, 'auto'):
            cfg.resume_fallback = dict(path=args.resume, resume=True)
        elif cfg.get('load_from'):
            cfg.resume_fallback = dict(path=cfg.load_from, resume=False)
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def restart_count() -> int:
    """How many times this job was restarted: torchrun's ``TORCHELASTIC_RESTART_COUNT``
    (``--max-restarts``), Slurm's ``SLURM_RESTART_COUNT`` (a requeued job)."""
    return max(int(os.environ.get(name) or 0)
               for name in ('TORCHELASTIC_RESTART_COUNT', 'SLURM_RESTART_COUNT'))


def enable_tensorboard(cfg: Config) -> None:
    """``--tensorboard``: add MMEngine's ``TensorboardVisBackend`` to the visualizer.

    The same as ``--cfg-options "visualizer.vis_backends=[dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend')]"``.
    """
    require('tensorboard', '--tensorboard')  # torch.utils.tensorboard needs it
    visualizer = cfg.setdefault('visualizer', dict(type='UniversalVisualizer'))
    backends = list(visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer['vis_backends'] = backends


def merge_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/test.py``'s flags to ``cfg`` (returned for chaining)."""
    cfg = _common_merge(cfg, args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.tta:
        enable_tta(cfg)
    cfg.lock_work_dir = False  # evaluating beside a training run of the same work dir is fine
    if args.allow_other_classes:
        cfg.allow_other_classes = True
    if args.out:
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = evaluators + [dict(type='DumpResults', out_file_path=args.out)]
    return cfg


def enable_tta(cfg: Config) -> None:
    """``--tta``: mmpretrain's ``tools/test.py --tta``, after ``--cfg-options`` (which so keep
    their ``model.head...`` paths).

    The config's ``tta_model`` wraps ``model`` (default: mmpretrain's ``AverageClsScoreTTA``,
    the mean of the scores) and its ``tta_pipeline`` replaces the test pipeline (default: the
    test pipeline whose last step becomes a ``TestTimeAug`` of the image and its horizontal
    flip). Checkpoints load into the wrapped network as they are.
    """
    if 'tta_model' not in cfg:
        cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
    if 'tta_pipeline' not in cfg:
        test_pipeline = cfg.test_dataloader.dataset.pipeline
        cfg.tta_pipeline = copy.deepcopy(test_pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                        [test_pipeline[-1]]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_runner(cfg: Config) -> Runner:
    """The config's runner (``ResNeStRunner`` unless ``runner_type`` names another), built in
    scope resnest_mm."""
    from ..registry import RUNNERS
    cfg.setdefault('runner_type', scoped('ResNeStRunner'))
    return RUNNERS.build(cfg)


def _preflight(cfg: Config, loaders: tuple) -> None:
    """The config mistakes refused before anything is built (keys, types, values, pretrained
    weights, the data folders of ``loaders``), each in one sentence."""
    preflight.check_top_level_keys(cfg)
    preflight.check_types(cfg)
    preflight.check_values(cfg)
    preflight.check_pretrained_init(cfg)
    preflight.check_datasets(cfg, loaders)


def train(argv: Optional[List[str]] = None) -> Runner:
    """``tools/train.py``: parse, merge, build, train. Returns the finished runner."""
    args = train_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = merge_train_args(load_config(args.config), args)
    _preflight(cfg, ('train_dataloader', 'val_dataloader'))
    with _setup_errors_explained(args.config) as holder:
        holder.runner = build_runner(cfg)
        holder.runner.continue_command = continue_command(
            sys.argv[1:] if argv is None else list(argv), args, cfg.work_dir)
        holder.runner.train()
    return holder.runner


def continue_command(argv: List[str], args: argparse.Namespace, work_dir: str) -> str:
    """The command that continues this training run from its work dir, shell-quoted: the same
    config, flags and ``--cfg-options``, ``--work-dir`` made explicit, ``--resume`` without a
    path; ``bash tools/dist_train.sh CONFIG N`` for a run started by torchrun."""
    rest, skip = [], 0
    for i, token in enumerate(argv):
        if skip:
            skip -= 1
        elif token == '--resume':  # with its PATH, when argparse took the next token as one
            skip = int(args.resume not in (None, 'auto') and argv[i + 1:i + 2] == [args.resume])
        elif token in ('--launcher', '--local_rank', '--local-rank'):
            skip = 1
        elif not token.startswith(('--resume=', '--launcher=', '--local_rank=', '--local-rank=')):
            rest.append(token)
    if args.work_dir is None:
        rest += ['--work-dir', work_dir]
    rest.append('--resume')
    if args.launcher == 'pytorch':
        devices = os.environ.get('LOCAL_WORLD_SIZE') or os.environ.get('WORLD_SIZE') or '1'
        rest.remove(args.config)
        return shlex.join(['bash', 'tools/dist_train.sh', args.config, devices, *rest])
    python = 'python'
    found = shutil.which('python')
    if found is None or os.path.realpath(found) != os.path.realpath(sys.executable):
        python = sys.executable  # the one that ran this, when python on PATH is another
    prefix = [python, 'tools/train.py']
    if args.launcher not in (None, 'none'):
        rest += ['--launcher', args.launcher]
    return shlex.join(prefix + rest)


def test(argv: Optional[List[str]] = None) -> dict:
    """``tools/test.py``: parse, merge, build, evaluate. Returns the metrics."""
    args = test_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = merge_test_args(load_config(args.config), args)
    _preflight(cfg, ('test_dataloader', ))
    with _setup_errors_explained(args.config) as holder:
        holder.runner = build_runner(cfg)
        holder.metrics = holder.runner.test()
    return holder.metrics


TRACEBACK_ENV = 'RESNEST_MM_TRACEBACK'


@contextlib.contextmanager
def _setup_errors_explained(config: str) -> Iterator[SimpleNamespace]:
    """A config value that cannot work (``batch_size=0``, ``lr=abc``, an unknown depth ...)
    fails deep inside mmengine or torch while the runner sets up: say so in one sentence
    instead of a traceback, unless the loop has started (then it is the run's error) or
    ``RESNEST_MM_TRACEBACK=1`` asks for the traceback. A run that ended well leaves its process
    group together with the other ranks (a failed one leaves it at exit)."""
    holder = SimpleNamespace(runner=None, metrics=None)
    try:
        yield holder
        leave_process_group(synchronize=True)
    except ExplainedError:
        raise
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV) == '1':
            raise
        if isinstance(exc, OSError) and (exc.filename is not None or exc.errno in NO_ROOM):
            # a file of the run (work dir, log, config dump) the system refused: not the config
            what = exc.filename or 'a file of the run (its config dump, log folder or log)'
            raise ExplainedOSError(
                f'{what}: {exc.strerror or exc}. resnest_mm could not write or read it: check '
                'that its folder exists, is writable and has space, or choose another '
                '--work-dir.') from exc
        if getattr(holder.runner, 'loop_started', False):
            raise
        detail = ' '.join(str(exc).split())[:400]
        raise ExplainedValueError(
            f'{config}: the run could not be set up from the config: {type(exc).__name__}: '
            f'{detail}. Check the config\'s values and --cfg-options ({TRACEBACK_ENV}=1 shows '
            'where it failed).') from exc
