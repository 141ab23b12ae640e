"""STAND-IN for ``torch_npu.profiler`` (contract tests only), on torch's CPU profiler.

The API of torch_npu's (``torch_npu/profiler/__init__.py``, ``profiler.py``, ``scheduler.py``,
master and the 2.1.0 releases): ``profile`` (keyword-only: ``activities``, ``schedule``,
``on_trace_ready``, ``record_shapes``, ``profile_memory``, ``with_stack`` ...; ``start``,
``step``, ``stop``, context manager), ``schedule(wait, active, warmup=0, repeat=0,
skip_first=0)`` returning a ``ProfilerAction`` per step, ``ProfilerActivity.CPU``/``NPU`` and
``tensorboard_trace_handler(dir_name, worker_name=None, ...)``. Profiling really runs (torch's
profiler, CPU activity; NPU activity records nothing here) and the handler writes the trace into
``<dir_name>/<worker_name>_<time>_ascend_pt/`` as torch_npu does, as a Chrome trace
(``trace_view.json``). Refuses activities that are not ``ProfilerActivity`` members and negative
schedule values (torch_npu warns and resets those; refusing is stricter).
"""
from __future__ import annotations

import enum
import os
import socket
import time
from typing import Any, Callable, Iterable, Optional

import torch


class ProfilerActivity(enum.Enum):
    CPU = 0
    NPU = 1


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


_TORCH_ACTIONS = {
    ProfilerAction.NONE: torch.profiler.ProfilerAction.NONE,
    ProfilerAction.WARMUP: torch.profiler.ProfilerAction.WARMUP,
    ProfilerAction.RECORD: torch.profiler.ProfilerAction.RECORD,
    ProfilerAction.RECORD_AND_SAVE: torch.profiler.ProfilerAction.RECORD_AND_SAVE,
}


class schedule:  # noqa: N801  (torch_npu exports its Schedule class under this name)
    """Skip ``skip_first`` steps, then cycles of ``wait``, ``warmup``, ``active`` steps
    (``repeat`` cycles; 0 = until the profiler stops)."""

    def __init__(self, wait: int, active: int, warmup: int = 0, repeat: int = 0,
                 skip_first: int = 0) -> None:
        for name, value in dict(wait=wait, warmup=warmup, repeat=repeat,
                                skip_first=skip_first).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'schedule {name}={value!r} must be an integer >= 0')
        if not isinstance(active, int) or active < 1:
            raise ValueError(f'schedule active={active!r} must be an integer >= 1')
        self.wait, self.active, self.warmup = wait, active, warmup
        self.repeat, self.skip_first = repeat, skip_first

    def __call__(self, step: int) -> ProfilerAction:
        if step < 0:
            raise ValueError('Invalid parameter step, which must be not less than 0.')
        if step < self.skip_first:
            return ProfilerAction.NONE
        step -= self.skip_first
        cycle = self.wait + self.warmup + self.active
        if self.repeat > 0 and step // cycle >= self.repeat:
            return ProfilerAction.NONE
        position = step % cycle
        if position < self.wait:
            return ProfilerAction.NONE
        if position < self.wait + self.warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if position < cycle - 1 else ProfilerAction.RECORD_AND_SAVE


def tensorboard_trace_handler(dir_name: Optional[str] = None, worker_name: Optional[str] = None,
                              analyse_flag: bool = True,
                              async_mode: bool = False) -> Callable[[Any], None]:
    dir_name = dir_name or os.getenv('ASCEND_WORK_PATH', '') or os.getcwd()
    worker = worker_name or f'{socket.gethostname()}_{os.getpid()}'

    def handler_fn(prof: profile) -> None:
        out = os.path.join(dir_name, f'{worker}_{time.strftime("%Y%m%d%H%M%S")}'
                                     f'{time.time_ns() % 1000:03d}_ascend_pt')
        os.makedirs(out, exist_ok=True)
        prof.export_chrome_trace(os.path.join(out, 'trace_view.json'))

    return handler_fn


class profile:  # noqa: N801  (torch_npu's name)
    def __init__(self, *, activities: Optional[Iterable[ProfilerActivity]] = None,
                 schedule: Optional[Callable[[int], ProfilerAction]] = None,
                 on_trace_ready: Optional[Callable[..., Any]] = None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config: Any = None,
                 use_cuda: Optional[bool] = None) -> None:
        activities = list(activities) if activities else list(ProfilerActivity)
        for activity in activities:
            if not isinstance(activity, ProfilerActivity):
                raise TypeError(f'{activity!r} is not a torch_npu.profiler.ProfilerActivity')
        self.activities = activities
        self.on_trace_ready = on_trace_ready
        self.trace_ready_calls = 0
        torch_schedule = None
        if schedule is not None:
            def torch_schedule(step: int) -> torch.profiler.ProfilerAction:
                return _TORCH_ACTIONS[schedule(step)]

        def trace_ready(_: Any) -> None:
            self.trace_ready_calls += 1
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)

        self._torch = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], schedule=torch_schedule,
            on_trace_ready=trace_ready, record_shapes=record_shapes,
            profile_memory=profile_memory, with_stack=with_stack, with_flops=with_flops,
            with_modules=with_modules)

    def start(self) -> None:
        self._torch.start()

    def stop(self) -> None:
        self._torch.stop()

    def step(self) -> None:
        self._torch.step()

    @property
    def step_num(self) -> int:
        return self._torch.step_num

    def export_chrome_trace(self, output_path: str) -> None:
        self._torch.export_chrome_trace(output_path)

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def supported_activities() -> set:
    return set(ProfilerActivity)
