"""``TorchNpuProfilerHook``: ``--prof`` on Ascend, through ``torch_npu.profiler``."""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ... import device
from ...registry import HOOKS
from ...utils.errors import ExplainedRuntimeError, ExplainedValueError


def _torch_npu_profiler() -> ModuleType:
    """``torch_npu.profiler``, or an error saying what to install."""
    if device.torch_npu() is None:
        raise ExplainedRuntimeError(
            'TorchNpuProfilerHook (--prof on Ascend) needs torch_npu, which is not installed or '
            'does not import here: install the torch_npu build matching your torch and CANN '
            "(README, 'Ascend NPU'), or train without --prof.")
    try:
        return importlib.import_module('torch_npu.profiler')
    except ImportError as exc:
        raise ExplainedRuntimeError(
            f'TorchNpuProfilerHook (--prof on Ascend) needs torch_npu.profiler, which this '
            f'torch_npu lacks ({exc}): upgrade torch_npu (it has the module since the '
            '5.0.rc3 releases of 2023), or train without --prof.') from exc


@HOOKS.register_module()
class TorchNpuProfilerHook(Hook):
    """Profile the first ``iters`` training iterations on an Ascend NPU, then train on.

    mmengine 0.10.7's ``NPUProfilerHook`` calls ``torch_npu.npu.profile``, which torch_npu
    removed in 2.1.0-6.0.rc1 (its master ``torch_npu/npu/__init__.py`` no longer has it), and it
    ends the process after profiling. This hook uses the current API, ``torch_npu.profiler``
    (``torch_npu/profiler/profiler.py``): ``profile`` with CPU and NPU activities, a ``schedule``
    that records iterations ``0 .. iters-1`` once, and ``tensorboard_trace_handler``, which
    writes the trace (view it with MindStudio Insight or TensorBoard's profile plugin) into
    ``out_dir``. Only the master rank profiles; training continues afterwards.

    Args:
        iters (int): Training iterations to profile, from this run's first one. Defaults to 10.
        out_dir (str, optional): Where the traces go. Defaults to
            ``<work_dir>/npu_profiling``.
        record_shapes (bool): Record operator input shapes. Defaults to False.
        profile_memory (bool): Record memory use. Defaults to False.
        with_stack (bool): Record Python stacks (costly). Defaults to False.

    Raises:
        ExplainedValueError: ``iters`` is not a positive integer.
        ExplainedRuntimeError: torch_npu or torch_npu.profiler is missing (when the hook is
            built, before anything runs).
    """

    priority = 'VERY_LOW'  # as mmengine's profiler hooks: time the other hooks too

    def __init__(self,
                 iters: int = 10,
                 out_dir: Optional[str] = None,
                 record_shapes: bool = False,
                 profile_memory: bool = False,
                 with_stack: bool = False) -> None:
        if not isinstance(iters, int) or iters < 1:
            raise ExplainedValueError(
                f'TorchNpuProfilerHook.iters={iters!r} must be a positive number of iterations')
        self.profiler_module = _torch_npu_profiler()
        self.iters = iters
        self.out_dir = out_dir
        self.profile_kwargs = dict(record_shapes=record_shapes, profile_memory=profile_memory,
                                   with_stack=with_stack)
        self.profiler: Any = None
        self._seen = 0

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        prof = self.profiler_module
        self.out_dir = self.out_dir or os.path.join(runner.work_dir, 'npu_profiling')
        self.profiler = prof.profile(
            activities=[prof.ProfilerActivity.CPU, prof.ProfilerActivity.NPU],
            schedule=prof.schedule(wait=0, warmup=0, active=self.iters, repeat=1),
            on_trace_ready=prof.tensorboard_trace_handler(self.out_dir),
            **self.profile_kwargs)
        self.profiler.start()
        print_log(f'Profiling the first {self.iters} iterations with torch_npu.profiler into '
                  f'{self.out_dir}.', logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        if self.profiler is None:
            return
        self.profiler.step()  # the schedule saves the trace after the last profiled step
        self._seen += 1
        if self._seen >= self.iters:
            self._finish()

    def after_train(self, runner) -> None:
        self._finish()  # the run ended before ``iters`` iterations: keep what was recorded

    def _finish(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None
            print_log(f'torch_npu.profiler trace written to {self.out_dir}.', logger='current')
