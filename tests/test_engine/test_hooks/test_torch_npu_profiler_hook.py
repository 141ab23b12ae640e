"""TorchNpuProfilerHook: contract tests against the torch_npu stand-in, whose profiler really
profiles (torch's CPU profiler) and writes traces as torch_npu's handler does."""
import glob
import json
import os
import sys

import pytest

from resnest_mm.engine.hooks import TorchNpuProfilerHook
from resnest_mm.engine.hooks import torch_npu_profiler_hook as hook_module
from resnest_mm.utils.errors import ExplainedError
from tests.helpers.toy_runner import make_runner


def _profiled_steps(work_dir):
    traces = glob.glob(os.path.join(work_dir, 'npu_profiling', '*_ascend_pt', 'trace_view.json'))
    steps = []
    for trace in traces:
        with open(trace) as f:
            events = json.load(f)['traceEvents']
        steps.append(sorted({e['name'] for e in events
                             if e.get('name', '').startswith('ProfilerStep#')}))
    return steps


def test_contract_profiles_the_first_iters_then_trains_on(simulated_npu, tmp_path):
    """Contract test (torch_npu stand-in): iterations 0 and 1 are recorded into one trace under
    <work_dir>/npu_profiling, and the run trains all 8 iterations (no exit)."""
    runner = make_runner(str(tmp_path), custom_hooks=[dict(type='TorchNpuProfilerHook',
                                                           iters=2)])
    runner.train()
    assert runner.iter == 8
    assert _profiled_steps(str(tmp_path)) == [['ProfilerStep#0', 'ProfilerStep#1']]


def test_contract_a_run_shorter_than_iters_keeps_its_trace(simulated_npu, tmp_path):
    """Contract test (torch_npu stand-in): profiling stops with the run."""
    runner = make_runner(str(tmp_path), train_cfg=dict(by_epoch=True, max_epochs=1),
                         custom_hooks=[dict(type='TorchNpuProfilerHook', iters=10,
                                            out_dir=str(tmp_path / 'prof'))])
    runner.train()
    traces = glob.glob(str(tmp_path / 'prof' / '*_ascend_pt' / 'trace_view.json'))
    assert len(traces) == 1


def test_contract_only_the_master_rank_profiles(simulated_npu, tmp_path, monkeypatch):
    """Contract test (torch_npu stand-in)."""
    monkeypatch.setattr(hook_module, 'is_main_process', lambda: False)
    runner = make_runner(str(tmp_path), custom_hooks=[dict(type='TorchNpuProfilerHook',
                                                           iters=2)])
    runner.train()
    assert runner.iter == 8 and _profiled_steps(str(tmp_path)) == []


def test_without_torch_npu_the_hook_is_a_clear_error():
    with pytest.raises(ExplainedError, match='needs torch_npu, which is not installed'):
        TorchNpuProfilerHook(iters=2)


def test_contract_a_torch_npu_without_its_profiler_is_a_clear_error(simulated_npu,
                                                                    monkeypatch):
    """Contract test (torch_npu stand-in with torch_npu.profiler made unimportable)."""
    monkeypatch.setitem(sys.modules, 'torch_npu.profiler', None)
    with pytest.raises(ExplainedError, match='needs torch_npu.profiler'):
        TorchNpuProfilerHook(iters=2)


def test_contract_iters_must_be_positive(simulated_npu):
    """Contract test (torch_npu stand-in)."""
    with pytest.raises(ExplainedError, match='iters=0'):
        TorchNpuProfilerHook(iters=0)
