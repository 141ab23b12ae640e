"""``init_process_group``: the distributed set-up of every launcher on NPU, CUDA and CPU."""
from __future__ import annotations

import atexit
import datetime
import logging
import multiprocessing
import os
import subprocess
import sys
from typing import Any, Dict, Tuple

import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.dist import init_dist
from mmengine.logging import print_log

from ... import device
from ...utils.errors import ExplainedKeyError, ExplainedValueError

LAUNCHERS = ('pytorch', 'slurm', 'mpi')


def _env(name: str, launcher: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise ExplainedKeyError(
            f'--launcher {launcher} needs the environment variable {name}, which is not set: '
            f'start the job through its launcher (tools/dist_train.sh for pytorch, srun / '
            f'tools/slurm_train.sh for slurm, mpirun for mpi), or use --launcher none') from None


def launcher_ranks(launcher: str) -> Tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher's environment, and the variables
    torch's ``env://`` rendezvous reads (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) set from them as mmengine does."""
    if launcher == 'pytorch':
        rank, world = int(_env('RANK', launcher)), int(_env('WORLD_SIZE', launcher))
        local = int(os.environ.get('LOCAL_RANK', '0'))
    elif launcher == 'slurm':
        rank, world = int(_env('SLURM_PROCID', launcher)), int(_env('SLURM_NTASKS', launcher))
        local = int(os.environ.get('SLURM_LOCALID', rank % max(1, device.device_count())))
        if 'MASTER_ADDR' not in os.environ:
            nodes = _env('SLURM_NODELIST', launcher)
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1').strip() or nodes
        os.environ.setdefault('MASTER_PORT', '29500')
    elif launcher == 'mpi':
        rank = int(_env('OMPI_COMM_WORLD_RANK', launcher))
        world = int(_env('OMPI_COMM_WORLD_SIZE', launcher))
        local = int(_env('OMPI_COMM_WORLD_LOCAL_RANK', launcher))
        _env('MASTER_ADDR', launcher)
        os.environ.setdefault('MASTER_PORT', '29500')
    else:
        raise ExplainedValueError(f'--launcher {launcher!r} is not one of {LAUNCHERS}')
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local))
    return rank, world, local


def init_process_group(launcher: str, dist_cfg: Dict[str, Any]) -> None:
    """Join the job's process group the way this device needs.

    What mmengine 0.10.7's ``init_dist`` lacks (``dist/utils.py``): its slurm and mpi paths call
    ``torch.cuda.set_device`` on every device, its pytorch path does so on CPU too, and it uses
    the configured backend (``nccl`` in every OpenMMLab config) where there is no GPU. Here each
    launcher's ranks are read from its environment, the device policy selects the local device
    (nothing on CPU, ``torch.npu.set_device`` on Ascend) and the backend follows the device:
    hccl on NPU, nccl on CUDA, gloo on CPU, whatever ``dist_cfg.backend`` says where that backend
    cannot run. ``dist_cfg.init_backend`` other than ``'torch'`` (deepspeed, colossalai) is handed
    to mmengine's ``init_dist`` unchanged.

    Args:
        launcher: ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        dist_cfg: ``env_cfg.dist_cfg``: ``backend``, ``timeout`` (seconds), ``init_backend``,
            ``port`` (slurm), and other ``init_process_group`` arguments.
    """
    cfg = dict(dist_cfg or {})
    if cfg.get('init_backend', 'torch') != 'torch':
        init_dist(launcher, **cfg)
        return
    cfg.pop('init_backend', None)
    port = cfg.pop('port', None)
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    wanted = cfg.pop('backend', None)
    timeout = cfg.pop('timeout', None)
    if timeout is not None:
        cfg['timeout'] = datetime.timedelta(seconds=timeout)
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    rank, world, local = launcher_ranks(launcher)
    backend = device.backend_for(wanted)
    if wanted and backend != wanted:
        print_log(f'dist backend {wanted!r} cannot run on {device.device_type()}: using '
                  f'{backend}.', logger='current', level=logging.WARNING)
    device.set_device(local)
    # torch's env:// rendezvous under torchrun keeps the agent's store across a group restart
    # (--max-restarts), so the new processes read the dead ones' gloo/nccl addresses and hang
    # or fail to connect: each attempt gets keys of its own.
    store, rank, world = next(torch_dist.rendezvous(
        'env://', rank=rank, world_size=world,
        **({'timeout': cfg['timeout']} if 'timeout' in cfg else {})))
    attempt = int(os.environ.get('TORCHELASTIC_RESTART_COUNT') or 0)
    store = torch_dist.PrefixStore(f'resnest_mm/attempt_{attempt}/', store)
    torch_dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world,
                                  **cfg)
    # gloo's threads can abort the process ("terminate called without an active exception")
    # when the interpreter tears the group down at exit: leave it first
    atexit.register(leave_process_group)
    global _joined
    _joined = True


_joined = False  # this process joined a process group (init_process_group)


def end_process(status: int = 0) -> None:
    """End a process whose distributed run ended well, without the interpreter's teardown.

    The cause of "terminate called without an active exception" (SIGABRT, exit status 1 from
    torchrun) on a rank after a successful run, in about 1 run of 20 on CPU: gloo's worker
    threads (``ProcessGroupGloo::runLoop``) destroy finished work items on their own threads,
    and a barrier's work item holds the earlier collectives' work (here the all-gather of the
    last checkpoint's run state), whose tensors belong to Python objects. When that destruction
    comes after the main thread has begun ``Py_FinalizeEx``, taking the GIL ends the worker
    thread (``PyThread_exit_thread``), its unwinding crosses a ``noexcept`` C++ frame, and
    ``std::terminate`` aborts the process (read from a core dump: thread 1 in
    ``~AsyncBarrierWork`` -> ``~AsyncAllgatherWork`` -> ``decref_pyobject`` -> ``take_gil`` ->
    ``pthread_exit``, thread 4 in ``Py_FinalizeEx``). ``destroy_process_group`` does not stop
    these threads while the group object is still referenced (DDP holds it), so no barrier or
    destroy before exit closes the window. Once the group is left nothing remains to run: the
    output streams and logs are flushed, data-loader workers ended, and the process exits
    with ``os._exit`` before the interpreter is finalised. A process that never joined a
    group returns (its normal exit is safe).

    Args:
        status: The exit status. Defaults to 0.
    """
    if not _joined:
        return
    leave_process_group()
    for child in multiprocessing.active_children():  # persistent data-loader workers
        child.terminate()
        child.join(timeout=5)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def leave_process_group(synchronize: bool = False) -> None:
    """Destroy the default process group, if any; with ``synchronize`` (a run that ended
    well), after a barrier, so that no rank closes its connections while another one still
    uses them (a gloo peer aborted then, "terminate called without an active exception")."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if synchronize:
        torch_dist.barrier()
    torch_dist.destroy_process_group()
