"""ResNeStRunner fills mmengine's gaps by overriding its own methods: each override works, and
mmengine's released Runner fails (or does silently wrong) where it fills one. Importing
resnest_mm and building a runner changes nothing of mmengine or torch."""
import logging
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner import Runner

from resnest_mm.engine.optimizers import CpuAmpOptimWrapper, EmulatedBf16Convolution
from resnest_mm.engine.runner import ResNeStRunner
from resnest_mm.engine.runner.resnest_runner import SAFETY_HOOKS
from resnest_mm.registry import bare_type
from resnest_mm.utils.mmengine_private import default_hook_keys
from tests.helpers.toy_runner import ROOT, ToyModel, make_runner

CHECKPOINT = dict(type='AtomicCheckpointHook', interval=1)

# A fresh process: ids of everything the acceptance names, before and after resnest_mm is
# imported, a demo runner is built and one of our checkpoints is written and read back.
UNTOUCHED = r'''
import inspect, sys, tempfile, os
import torch, torch.serialization
import mmengine.runner.runner as runner_module, mmengine.dist.utils as dist_utils
import mmengine.runner.checkpoint as checkpoint_module
from mmengine.runner import Runner
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.logging import HistoryBuffer
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.runner.checkpoint import CheckpointLoader

def snapshot():
    ids = {}
    for owner in (Runner, AmpOptimWrapper, OptimWrapper, HistoryBuffer,
                  MMDistributedDataParallel, CheckpointLoader):
        for name, value in vars(owner).items():
            ids[f'{owner.__name__}.{name}'] = id(value)
    for prefix, fn in CheckpointLoader._schemes.items():
        ids[f'scheme {prefix}'] = id(fn)
    for module in (runner_module, dist_utils, checkpoint_module, torch.serialization):
        for name, value in vars(module).items():
            if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
                ids[f'{module.__name__}.{name}'] = id(value)
    # torch allow-lists its own classes (DTensor ...) when those modules load; nothing else
    ids['safe globals'] = hash(frozenset(
        id(g) for g in torch.serialization.get_safe_globals()
        if not getattr(g, '__module__', '').startswith('torch.')))
    return ids

before = snapshot()
sys.path.insert(0, os.getcwd())
import resnest_mm, resnest_mm.registry
resnest_mm.registry.register_all_modules()
from mmengine.config import Config
from resnest_mm.frontends.cli import build_runner
from tests.helpers.images import write_image_folder
cfg = Config.fromfile('configs/resnest50_1xb32_digits.py')
cfg.work_dir = tempfile.mkdtemp()
for split in ('train', 'val'):
    write_image_folder(os.path.join(cfg.work_dir, 'data', split), ['a', 'b'], size=16)
for loader in (cfg.train_dataloader, cfg.val_dataloader):
    loader.dataset.data_root = os.path.join(cfg.work_dir, 'data')
runner = build_runner(cfg)
runner.save_checkpoint(cfg.work_dir, 'x.pth', save_optimizer=False, save_param_scheduler=False)
runner.load_checkpoint(os.path.join(cfg.work_dir, 'x.pth'))
after = snapshot()
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
print('CHANGED', changed)
print('TYPE', type(runner).__name__)
'''


@pytest.mark.slow
def test_importing_and_building_leaves_mmengine_and_torch_as_released(repo_root):
    result = subprocess.run([sys.executable, '-c', UNTOUCHED], cwd=repo_root,
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'CHANGED []' in result.stdout, result.stdout[-2000:]
    assert 'TYPE ResNeStRunner' in result.stdout


# --- checkpoints: written as plain data, read as data ---------------------------------------------

@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('toy'))
    make_runner(work_dir, default_hooks=dict(checkpoint=CHECKPOINT)).train()
    return work_dir


def test_our_checkpoints_are_plain_data_with_a_digest(trained_work_dir):
    path = os.path.join(trained_work_dir, 'epoch_2.pth')
    # torch's own weights-only load, with no allow-list at all
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        checkpoint = torch.load(path, weights_only=True)
    finally:
        torch.serialization.add_safe_globals(allowed)
    assert {'state_dict', 'optimizer', 'message_hub', 'meta'} <= set(checkpoint)
    digest = open(path + '.sha256').read().split()
    assert digest[1] == 'epoch_2.pth' and len(digest[0]) == 64  # sha256sum's format


def test_resume_our_checkpoint(trained_work_dir, tmp_path):
    runner = make_runner(str(tmp_path), train_cfg=dict(by_epoch=True, max_epochs=3),
                         load_from=os.path.join(trained_work_dir, 'epoch_2.pth'), resume=True)
    runner.train()
    assert runner.epoch == 3
    # the message hub's log history came back as HistoryBuffers
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 12


def test_checkpoints_of_the_released_runner_resume_without_a_flag(tmp_path):
    """mmengine's HistoryBuffer pickles builtins.getattr calls and numpy arrays, which torch>=2.6's
    default weights-only load refuses (open-mmlab/mmengine#1655); our reader rebuilds exactly
    those as data, with no --unsafe-load."""
    import pickle

    from mmengine.logging import HistoryBuffer
    work_dir = str(tmp_path / 'released')
    make_runner(work_dir, runner_cls=Runner).train()
    path = os.path.join(work_dir, 'epoch_1.pth')
    released = make_runner(str(tmp_path / 'r2'), runner_cls=Runner)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        released.resume(path)
    methods = dict(HistoryBuffer._statistics_methods)
    ours = make_runner(str(tmp_path / 'r3'), load_from=path, resume=True)
    ours.train()
    assert ours.epoch == 2
    loss = ours.message_hub.get_scalar('train/loss')
    assert len(loss.data[0]) == 8 and loss.statistics('mean') == loss.mean()
    assert HistoryBuffer._statistics_methods == methods  # the class's own, untouched


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_checkpoints_that_run_code_are_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': ToyModel().state_dict(), 'x': _Exploit()}, path)
    runner = make_runner(str(tmp_path / 'w'), load_from=path)
    with pytest.raises(ValueError, match=r'evil.pth is refused: it holds posix.system'):
        runner.train()


def test_a_checkpoint_that_does_not_fit_is_refused_not_half_loaded(trained_work_dir, tmp_path):
    from mmengine.model import BaseModel

    class Wider(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, inputs, labels=None, mode='tensor'):
            return self.linear(inputs)

    runner = make_runner(str(tmp_path), model=Wider(),
                         load_from=os.path.join(trained_work_dir, 'epoch_2.pth'))
    with pytest.raises(ValueError, match=r'of another shape .*linear.weight \(2, 4\) vs \(3, 4\)'):
        runner.train()


# --- AMP on CPU -----------------------------------------------------------------------------------

def test_cpu_amp_wrapper_autocasts_bf16_without_a_scaler():
    model = ToyModel()
    wrapper = CpuAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model.linear(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    before = model.linear.weight.detach().clone()
    wrapper.update_params(out.float().sum())
    assert not torch.equal(before, model.linear.weight)
    assert isinstance(wrapper, AmpOptimWrapper) and 'loss_scaler' in wrapper.state_dict()


def test_cpu_amp_wrapper_rejects_fp16():
    with pytest.raises(ValueError, match='bfloat16'):
        CpuAmpOptimWrapper(dtype='float16',
                           optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1))


def test_released_amp_wrapper_refuses_the_cpu_and_ours_says_what_to_use(tmp_path):
    with pytest.raises(AssertionError, match='only available'):
        AmpOptimWrapper(optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1))
    runner = make_runner(str(tmp_path), optim_wrapper=dict(
        type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match="type='CpuAmpOptimWrapper'"):
        runner.train()


def test_cpu_bf16_convolution_emulation_matches_native_bf16():
    """On CPUs without bf16 units, CPU AMP computes convolutions as bf16-rounded fp32: the same
    numbers as PyTorch's (slow) native bf16 kernel, up to fp32 summation order."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 32, 3, padding=1, groups=2)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        native = conv(x)
        with EmulatedBf16Convolution():
            emulated = conv(x)
    assert emulated.dtype == native.dtype == torch.bfloat16
    ulp = native.float().abs() * 2**-7 + 1e-6  # one bf16 unit in the last place
    assert ((emulated.float() - native.float()).abs() <= ulp).all()
    emulated.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_cpu_amp_wrapper_emulates_only_without_bf16_units():
    from resnest_mm import device
    wrapper = CpuAmpOptimWrapper(optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1))
    assert wrapper.emulate_bf16_conv is (not device.cpu_native_bf16())
    forced = CpuAmpOptimWrapper(optimizer=torch.optim.SGD(ToyModel().parameters(), lr=0.1),
                                emulate_bf16_conv=True)
    assert forced.emulate_bf16_conv


# --- process groups: every launcher on CPU ------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_ranks_ok(results) -> None:
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    out = ''.join(r.stdout for r in results)
    ranks = sorted(re.findall(r'RANK (\d) OK (-?\d+\.\d{6})', out))
    assert [rank for rank, _ in ranks] == ['0', '1']
    assert ranks[0][1] == ranks[1][1]  # DDP kept the replicas identical


def _toy(work_dir, *extra):
    return [os.path.join(ROOT, 'tests/helpers/toy_runner.py'), str(work_dir), *extra]


def _by_hand(work_dir, launcher, env_of_rank, *extra):
    """Two processes started by hand with a launcher's environment (as srun / mpirun would)."""
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', MASTER_ADDR='127.0.0.1',
                   MASTER_PORT=port, **env_of_rank(rank))
        for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
            env.pop(name, None)
        cmd = [sys.executable, *_toy(work_dir, '--launcher', launcher, *extra)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _slurm_env(rank):
    return dict(SLURM_PROCID=str(rank), SLURM_NTASKS='2', SLURM_LOCALID=str(rank),
                SLURM_NODELIST='localhost')


def _mpi_env(rank):
    return dict(OMPI_COMM_WORLD_RANK=str(rank), OMPI_COMM_WORLD_SIZE='2',
                OMPI_COMM_WORLD_LOCAL_RANK=str(rank))


@pytest.mark.slow
def test_two_process_gloo_training_with_torchrun(tmp_path):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           f'--master_port={_free_port()}', *_toy(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                            env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))
    _two_ranks_ok([result])


@pytest.mark.slow
def test_slurm_launcher_initialises_gloo_on_cpu(tmp_path):
    """tools/slurm_train.sh's path: --launcher slurm with the SLURM_* variables of a 2-task step
    (set by hand: there is no Slurm here), 2 processes."""
    _two_ranks_ok(_by_hand(tmp_path, 'slurm', _slurm_env))


@pytest.mark.slow
def test_mpi_launcher_initialises_gloo_on_cpu(tmp_path):
    _two_ranks_ok(_by_hand(tmp_path, 'mpi', _mpi_env))


@pytest.mark.slow
@pytest.mark.parametrize('launcher,env', [('slurm', _slurm_env), ('pytorch', None)])
def test_released_runner_fails_on_cpu(tmp_path, launcher, env):
    if env is None:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
               f'--master_port={_free_port()}', *_toy(tmp_path, '--released')]
        results = [subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                                  env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))]
    else:
        results = _by_hand(tmp_path, launcher, env, '--released')
    assert any(r.returncode != 0 for r in results)
    err = ''.join(r.stderr for r in results).lower()
    assert 'cuda' in err or 'nccl' in err


def test_ddp_on_cpu_gets_no_device_ids(tmp_path, monkeypatch):
    import torch.distributed as dist
    from mmengine.model.wrappers import MMDistributedDataParallel
    monkeypatch.setenv('LOCAL_RANK', '0')
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        runner = make_runner(str(tmp_path / 'w'), launcher='pytorch')
        assert isinstance(runner.model, MMDistributedDataParallel)
        assert runner.model.device_ids is None
        with pytest.raises(ValueError, match='device_ids'):
            make_runner(str(tmp_path / 'w2'), runner_cls=Runner, launcher='pytorch')
    finally:
        dist.destroy_process_group()


# --- no silent AMP on older Ascend SoCs ----------------------------------------------------------

def test_contract_old_ascend_soc_keeps_the_configured_wrapper(request, tmp_path):
    """Contract test (torch_npu stand-in, SoC 104 < 220): mmengine would force AmpOptimWrapper;
    the configured OptimWrapper is built and what the SoC computes is logged."""
    runner = make_runner(str(tmp_path))  # on the CPU: the stand-in has no NPU tensors
    request.getfixturevalue('simulated_npu')
    handler_owner, handler, messages = runner.logger, logging.Handler(), []
    handler.emit = lambda record: messages.append(record.getMessage())
    handler_owner.addHandler(handler)
    try:
        wrapper = runner.build_optim_wrapper(dict(optimizer=dict(type='SGD', lr=0.1)))
    finally:
        handler_owner.removeHandler(handler)
    assert type(wrapper) is OptimWrapper
    assert any('computes fp32 convolutions and matrix products in fp16' in m and
               'would silently replace optim_wrapper.type=OptimWrapper' in m for m in messages)


def test_released_builder_forces_amp_on_old_ascend_socs(monkeypatch):
    """Documents the upstream behaviour ResNeStRunner.build_optim_wrapper replaces."""
    from mmengine.optim.optimizer import builder
    monkeypatch.setattr(builder, 'is_npu_available', lambda: True)
    monkeypatch.setattr(builder, 'is_npu_support_full_precision', lambda: False)
    # it builds AmpOptimWrapper whatever the config says (here the CPU makes that wrapper's
    # own assertion show it)
    with pytest.raises(AssertionError, match='AmpOptimizerWrapper'):
        builder.build_optim_wrapper(
            ToyModel(), dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))


# --- safety hooks ---------------------------------------------------------------------------------

def _types(runner):
    return [type(h).__name__ for h in runner.hooks]


def test_safety_hooks_are_the_runners_defaults(tmp_path):
    runner = make_runner(str(tmp_path))
    safety = {bare_type(h['type']) for h in SAFETY_HOOKS.values()}
    assert {'NonFiniteLossHook', 'UnreadableImageHook', 'ProgressBarHook'} <= safety
    assert safety <= set(_types(runner))
    released = make_runner(str(tmp_path / 'r'), runner_cls=Runner)
    assert 'NonFiniteLossHook' not in _types(released)


def test_a_safety_hook_listed_in_custom_hooks_is_registered_once(tmp_path):
    runner = make_runner(str(tmp_path), custom_hooks=[dict(type='NonFiniteLossHook')])
    assert _types(runner).count('NonFiniteLossHook') == 1


def test_a_safety_hook_is_switched_off_only_by_its_key(tmp_path):
    runner = make_runner(str(tmp_path), default_hooks=dict(non_finite_loss=None))
    assert 'NonFiniteLossHook' not in _types(runner)
    assert isinstance(runner, ResNeStRunner)


def test_none_drops_mmengines_default_hooks_and_ours_alike(tmp_path):
    """mmengine's default keys (asked of mmengine) are its to drop; ours are the runner's."""
    off = {key: None for key in list(default_hook_keys()) + list(SAFETY_HOOKS)}
    runner = make_runner(str(tmp_path), default_hooks=off)
    dropped = {h['type'] for h in default_hook_keys().values()} | {
        bare_type(h['type']) for h in SAFETY_HOOKS.values()}
    assert not dropped & set(_types(runner))


def test_resume_never_executes_the_checkpoints_meta_config(trained_work_dir, tmp_path):
    """mmengine's Runner.resume runs meta['config'] through Config.fromstring, i.e. as Python:
    a plain string passes any weights-only load, and whoever writes the file writes its digest
    too. Ours drops it unread."""
    from resnest_mm.utils import atomic_save
    marker = tmp_path / 'PWNED'
    checkpoint = torch.load(os.path.join(trained_work_dir, 'epoch_2.pth'), weights_only=True)
    checkpoint['meta']['config'] = f'x = __import__("os").system("touch {marker}")'
    path = str(tmp_path / 'epoch_2.pth')
    atomic_save(checkpoint, path, digest=True)
    runner = make_runner(str(tmp_path / 'w'), train_cfg=dict(by_epoch=True, max_epochs=3),
                         load_from=path, resume=True)
    runner.train()
    assert runner.epoch == 3 and not marker.exists()


def test_a_weights_only_file_is_not_resumed(tmp_path):
    path = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': ToyModel().state_dict()}, path)
    with pytest.raises(ValueError, match='is not a training checkpoint .*load_from'):
        make_runner(str(tmp_path / 'w'), load_from=path, resume=True).train()


def test_a_digest_that_is_not_a_file_is_a_sentence(trained_work_dir, tmp_path):
    import shutil

    from resnest_mm.utils.checkpoint_io import CheckpointError, load_checkpoint_file
    shutil.copy(os.path.join(trained_work_dir, 'epoch_2.pth'), tmp_path / 'x.pth')
    (tmp_path / 'x.pth.sha256').mkdir()
    with pytest.raises(CheckpointError, match='cannot be read as a digest'):
        load_checkpoint_file(str(tmp_path / 'x.pth'))


@pytest.mark.slow  # two whole Runner runs with validation
def test_best_checkpoints_are_never_resumed_and_record_the_right_epoch(tiny_data, tmp_path):
    """With save_best, mmengine saves the epoch checkpoint again during validation (when the
    runner's epoch has moved on): its recorded position must still be its own epoch; and
    --resume must take it, not best_*.pth, which has no optimizer or schedule."""
    from mmengine.config import Config

    from resnest_mm.frontends.cli import build_runner
    from tests.helpers.tiny_config import TINY

    def runner(max_epochs, resume=False):
        cfg = Config.fromfile(TINY)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.data_root = str(tiny_data)
        cfg.default_hooks.checkpoint.update(save_best='auto', iter_interval=-1)
        cfg.custom_hooks = []
        cfg.train_cfg.max_epochs = max_epochs
        cfg.work_dir, cfg.resume = str(tmp_path), resume
        return build_runner(cfg)

    runner(1).train()
    checkpoint = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    assert checkpoint['meta']['run_state']['position']['epochs_done'] == 1
    assert [p.name for p in tmp_path.glob('best_*.pth')]  # written after epoch_1.pth
    resumed = runner(2, resume=True)
    from resnest_mm.engine.loops import CheckpointList, checkpoint_folder
    newest = CheckpointList(checkpoint_folder(resumed)).newest_verified(resumed.logger)
    assert newest == str(tmp_path / 'epoch_1.pth')
    resumed.train()
    assert resumed.train_loop.iters_this_process == 6 and resumed.epoch == 2


@pytest.mark.parametrize('field,value,expected', [
    ('epochs_done', 10 ** 8, '100,000,000 epochs done, but this run has max_epochs=3'),
    ('iters_done', 10 ** 9, '0 batches and 1,000,000,000 iterations done after 2 epochs of 4'),
    ('random_states', [dict(python=(3, (1, 2), None))], 'random states that are not ('),
])
def test_an_implausible_run_state_is_refused_in_a_sentence(field, value, expected,
                                                           trained_work_dir, tmp_path):
    """An epochs_done of 1e8 in a changed world replayed 6e8 scheduler steps; random states
    were restored as given. The run state is checked against this run's config first."""
    import signal

    from resnest_mm.utils import atomic_save
    checkpoint = torch.load(os.path.join(trained_work_dir, 'epoch_2.pth'), weights_only=True)
    state = checkpoint['meta']['run_state']
    if field == 'random_states':
        state['random_states'] = value
    else:
        state['position'][field] = value
    state['position']['dataset_length'] += 1  # a changed world: the schedule is replayed
    path = str(tmp_path / 'epoch_2.pth')
    atomic_save(checkpoint, path, digest=True)
    runner = make_runner(str(tmp_path / 'w'), default_hooks=dict(checkpoint=CHECKPOINT),
                         train_cfg=dict(by_epoch=True, max_epochs=3), load_from=path,
                         resume=True)

    def _alarm(signum, frame):
        raise TimeoutError('the resume is still running after 60 s')

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        with pytest.raises(ValueError) as info:
            runner.train()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert str(info.value).startswith(f"the checkpoint's run state says {expected}")
    assert str(info.value).endswith('start from it with load_from (weights only), or resume '
                                    'another checkpoint')


@pytest.mark.slow  # data-loader worker processes
@pytest.mark.parametrize('raises', [False, True])
def test_loader_workers_end_when_the_loops_return(tmp_path, raises):
    """Persistent workers of the train, val and test loaders end when train() and test()
    return or raise; left to the garbage collector with the runner they took 5 s each. The
    loaders start new ones when iterated again."""
    from mmengine.evaluator import BaseMetric, Evaluator
    from mmengine.hooks import Hook

    from tests.helpers.toy_runner import toy_dataset

    class Count(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(len(data_samples))

        def compute_metrics(self, results):
            return dict(samples=sum(results))

    workers = []

    class Record(Hook):
        def after_val_epoch(self, runner, metrics=None):
            workers.extend(runner.val_loop.dataloader._iterator._workers)
            if raises:
                raise KeyboardInterrupt

        def after_test_epoch(self, runner, metrics=None):
            workers.extend(runner.test_loop.dataloader._iterator._workers)

    def loader():
        return dict(dataset=toy_dataset(), batch_size=4, num_workers=2, persistent_workers=True,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='default_collate'))

    runner = make_runner(str(tmp_path), train_dataloader=loader(), val_dataloader=loader(),
                         val_cfg=dict(), val_evaluator=Evaluator([Count()]),
                         test_dataloader=loader(), test_cfg=dict(),
                         test_evaluator=Evaluator([Count()]),
                         train_cfg=dict(by_epoch=True, max_epochs=1), custom_hooks=[Record()])
    try:
        runner.train()
    except KeyboardInterrupt:
        assert raises
    workers.extend(runner.train_loop.dataloader._iterator._workers
                   if runner.train_loop.dataloader._iterator else [])
    runner.test()
    assert len(workers) == 4  # the val and test loaders' (the train loader's are gone too)
    for worker in workers:
        worker.join(timeout=2)  # ended already: this returns at once
    assert not any(worker.is_alive() for worker in workers)
    assert runner.train_loop.dataloader._iterator is None
    assert runner.test()['samples'] == 16  # new workers
