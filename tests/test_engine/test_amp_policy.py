"""The AMP policy: one decision for (device, --amp, ApexAmpHook, apex installed), and the runner
that applies it (one optimizer wrapper, the model wrapped once)."""
import itertools

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from resnest_mm.engine import amp_policy
from resnest_mm.engine.amp_policy import DeviceFacts
from resnest_mm.engine.hooks import ApexAmpHook
from resnest_mm.registry import bare_type
from tests.helpers.toy_runner import make_runner

HOOK = dict(type='resnest_mm.ApexAmpHook', opt_level='O1', loss_scale='dynamic')
F16, BF16 = torch.float16, torch.bfloat16
NATIVE = {'cpu': ('bf16', 'CpuAmpOptimWrapper', BF16, None),
          'cuda': ('fp16', 'AmpOptimWrapper', F16, 'dynamic'),
          'npu': ('fp16', 'AmpOptimWrapper', F16, 'dynamic')}
APEX = ('apex', 'ApexAmpOptimWrapper', F16, 'dynamic')
OFF = ('off', 'OptimWrapper', None, None)
BOTH = 'both ask for mixed precision'


def _expected(kind, amp, hook, apex):
    """The decision table of docs/devices.md ('Mixed precision')."""
    if hook:  # --amp leaves a config with the hook to the hook
        return APEX if apex else NATIVE[kind]
    return NATIVE[kind] if amp else OFF


@pytest.mark.parametrize('kind,amp,hook,apex', list(itertools.product(
    ('cpu', 'cuda', 'npu'), (False, True), (False, True), (False, True))))
def test_every_case_decides_wrapper_dtype_and_scaling(kind, amp, hook, apex):
    """(device, --amp, ApexAmpHook, apex installed) -> flavour, optimizer wrapper, autocast
    dtype, loss scale; the wrapper config built from the plan names that wrapper."""
    facts = DeviceFacts(kind, apex_installed=apex)
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                      custom_hooks=[HOOK] if hook else []))
    if amp:
        amp_policy.apply_amp_flag(cfg, facts=facts)
    plan = amp_policy.decide(cfg.optim_wrapper, amp_policy.apex_request_in_cfg(cfg), facts)
    assert (plan.flavour, plan.wrapper_type, plan.dtype, plan.loss_scale) == \
        _expected(kind, amp, hook, apex)
    built = plan.optim_wrapper_cfg(cfg.optim_wrapper)
    assert bare_type(built.get('type', 'OptimWrapper')) == plan.wrapper_type
    if plan.flavour in ('fp16', 'bf16'):
        assert built['dtype'] == str(plan.dtype).replace('torch.', '')
    assert plan.mixed == (plan.flavour != 'off')
    # a fallback says so; a plain run on a full-precision device says nothing
    assert (plan.note is not None) == (hook and not apex)


def test_amp_wrapper_and_the_hook_together_are_refused_where_apex_runs():
    wrapper = dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    request = amp_policy.ApexSettings()
    with pytest.raises(ValueError, match=BOTH):
        amp_policy.decide(wrapper, request, DeviceFacts('cuda', apex_installed=True))
    plan = amp_policy.decide(wrapper, request, DeviceFacts('cuda', apex_installed=False))
    assert plan.wrapper_type == 'AmpOptimWrapper' and 'leaves AMP' in plan.note


def test_amp_dtype_and_cpu_refusal_and_npu_advice():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    amp_policy.apply_amp_flag(cfg, 'bfloat16', facts=DeviceFacts('cuda', False))
    plan = amp_policy.decide(cfg.optim_wrapper, None, DeviceFacts('cuda', False))
    assert (plan.flavour, plan.dtype, plan.loss_scale) == ('bf16', BF16, None)
    with pytest.raises(ValueError, match="on the CPU use type='CpuAmpOptimWrapper'"):
        amp_policy.decide(dict(type='AmpOptimWrapper'), None, DeviceFacts('cpu', False))
    plan = amp_policy.decide(dict(type='OptimWrapper'), None,
                             DeviceFacts('npu', False, full_precision=False))
    assert plan.flavour == 'off' and 'version < 220' in plan.note
    with pytest.raises(ValueError, match='--amp-dtype: this config sets up mixed precision'):
        amp_policy.apply_amp_flag(Config(dict(optim_wrapper=dict(), custom_hooks=[HOOK])),
                                  'float16', facts=DeviceFacts('cuda', False))


def test_the_hook_refuses_a_wrapper_it_cannot_switch_and_fallback_false_without_apex():
    with pytest.raises(ValueError, match='optim_wrapper.type=MyWrapper is not an optimizer'):
        amp_policy.decide(dict(type='MyWrapper'), amp_policy.ApexSettings(),
                          DeviceFacts('npu', True))
    with pytest.raises(RuntimeError, match=r'fallback=False\): apex is not installed'):
        amp_policy.decide(dict(type='OptimWrapper'), amp_policy.ApexSettings(fallback=False),
                          DeviceFacts('npu', False))


def test_a_built_hook_and_a_hook_config_ask_the_same():
    built = ApexAmpHook(opt_level='O2', loss_scale=128.0, float_functions=[['torch', 'exp']])
    from_cfg = amp_policy.apex_request([dict(HOOK, opt_level='O2', loss_scale=128.0,
                                             float_functions=[['torch', 'exp']])])
    assert amp_policy.apex_request([built]) == from_cfg
    assert from_cfg.float_functions == (('torch', 'exp'), )
    assert amp_policy.apex_request([dict(type='CheckpointHook')]) is None


def test_the_hook_refuses_to_be_ignored_under_a_runner_that_does_not_apply_the_policy(tmp_path):
    """mmengine's own Runner builds the configured OptimWrapper: without the hook's check the
    run would train in fp32 although the config asks for mixed precision."""
    from mmengine.runner import Runner
    runner = make_runner(str(tmp_path), runner_cls=Runner, custom_hooks=[HOOK])
    with pytest.raises(RuntimeError, match=r'ApexAmpHook: the optimizer wrapper \(OptimWrapper\)'):
        runner.train()


class FirstWrapperProbe(Hook):
    """Records the optimizer wrapper the runner built, before any other hook's before_run."""

    priority = 'HIGHEST'

    def before_run(self, runner) -> None:
        self.wrapper = runner.optim_wrapper


def test_the_runner_builds_the_decided_wrapper_once(tmp_path):
    """No optimizer wrapper is replaced after it is built: the one the runner built trains,
    the LR schedule is built on it, and the summary reports mixed precision."""
    probe = FirstWrapperProbe()
    runner = make_runner(str(tmp_path), custom_hooks=[HOOK, probe])
    runner.train()
    assert probe.wrapper is runner.optim_wrapper
    assert isinstance(runner.optim_wrapper, AmpOptimWrapper)
    assert runner.param_schedulers[0].optimizer is runner.optim_wrapper
    assert amp_policy.runs_mixed_precision(runner.optim_wrapper)
    assert not amp_policy.runs_mixed_precision(OptimWrapper(torch.optim.SGD(
        [torch.nn.Parameter(torch.zeros(1))], lr=0.1)))


def test_amp_flag_builds_under_another_default_scope(tmp_path):
    """--amp's wrapper is built in a config whose default scope is mmpretrain's (ours by their
    scoped name; mmengine's own by its plain one)."""
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    amp_policy.apply_amp_flag(cfg)
    runner = make_runner(str(tmp_path), default_scope='mmpretrain',
                         optim_wrapper=cfg.optim_wrapper.to_dict(),
                         train_cfg=dict(by_epoch=True, max_epochs=1))
    runner.train()
    assert amp_policy.runs_mixed_precision(runner.optim_wrapper)
