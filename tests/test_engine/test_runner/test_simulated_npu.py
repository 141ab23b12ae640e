"""The real ResNeStRunner on a simulated Ascend NPU, trained and resumed mid-epoch.

Contract tests: they run against the torch_npu and apex stand-ins (tests/helpers/standins), with
the CPU as the NPU's memory; they check what our runner, hooks and optimizer wrappers ask of
torch_npu, apex and mmengine's NPU branches, not that an NPU works. In-process
(``simulated_npu``): mmengine sees an NPU (``get_device()`` is ``'npu'``: the model is placed
through ``torch.npu.native_device``, ``Runner.resume`` loads with ``map_location='npu'``, SoC 104
would make mmengine force ``AmpOptimWrapper``), ``launcher='pytorch'`` with one process joins an
``hccl`` process group through ``ResNeStRunner``'s own set-up (``torch.npu.set_device`` of
``LOCAL_RANK``; the stand-in's hccl is gloo underneath) and the model is DDP-wrapped on it, the
config's ``type='NpuFusedSGD'`` builds torch_npu's fused SGD (combined buffers) and, under
``ApexAmpHook``, apex's (dynamic loss scaling, one overflow at iteration 3). The run state is
written by ``AtomicCheckpointHook`` and resumed by ``ResumableEpochBasedTrainLoop`` with
``ResumableSampler``.

A hook draws from the NPU's generator before every iteration (as a random augmentation on the
device would) and adds that noise to the batch, so the final weights depend on the NPU RNG
state being restored too. DDP gets ``device_ids=None``: the stand-in NPU's tensors are CPU
tensors, for which DDP refuses device ids (on a real NPU mmengine passes ``[LOCAL_RANK]``).
"""
import copy
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model.wrappers import MMDistributedDataParallel
from mmengine.optim import OptimWrapper

from tests.helpers.standins.npu_process_run import overflow_model
from tests.helpers.toy_runner import make_runner, toy_dataset

LOCAL_RANK = 2  # a device other than the default 0, so that set_device shows
HOOK = dict(type='ApexAmpHook', opt_level='O1', loss_scale='dynamic', combine_grad=True,
            float_functions=[('torch', 'sigmoid'), ('torch', 'softmax')])
RESUME_FROM = 'iter_6.pth'  # 2 of 4 batches into epoch 2


class NpuRecord(Hook):
    """Before every iteration: the NPU RNG state, the apex loss-scaler state (when apex runs),
    then noise drawn from the NPU generator added to the batch (and the state after it); the
    loss-scaler state at the end of the run."""

    def __init__(self) -> None:
        self.rng, self.amp, self.rng_after = {}, {}, {}
        self.final_amp = None

    def after_run(self, runner) -> None:
        amp = sys.modules.get('apex.amp')
        if amp is not None:
            self.final_amp = copy.deepcopy(amp.state_dict())

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        iteration = runner.iter + 1
        state = torch.npu.get_rng_state()
        self.rng[iteration] = state.clone()
        amp = sys.modules.get('apex.amp')
        if amp is not None:
            self.amp[iteration] = copy.deepcopy(amp.state_dict())
        generator = torch.Generator().manual_seed(0)
        generator.set_state(state)
        noise = torch.rand(data_batch['inputs'].shape, generator=generator) * 0.1
        torch.npu.set_rng_state(generator.get_state())  # as a draw on the device advances it
        self.rng_after[iteration] = torch.npu.get_rng_state().clone()
        data_batch['inputs'] = data_batch['inputs'] + noise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def one_npu_process(simulated_npu, monkeypatch):
    """The torchrun environment of a 1-process job on NPU ``LOCAL_RANK``; the process group our
    runner creates is destroyed afterwards (before the simulation is undone)."""
    for key, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK=str(LOCAL_RANK),
                           LOCAL_WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    for key in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):  # mmengine sets them (to 1) when
        monkeypatch.setenv(key, os.environ.get(key, str(torch.get_num_threads())))  # distributed
    try:
        yield simulated_npu
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(work_dir, apex: bool, npu_seed: int, **overrides):
    """The toy model on the simulated NPU (2 epochs of 4 iterations, iteration checkpoints
    every 3); returns the runner, after training, and its record."""
    torch.npu.manual_seed_all(npu_seed)
    torch.manual_seed(0)  # the same initial weights in every run
    record = NpuRecord()
    hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, iter_interval=3,
                                 max_keep_ckpts=-1),
                 logger=dict(type='LoggerHook', interval=1))
    if apex:
        hooks['apex_amp'] = HOOK
    runner = make_runner(
        str(work_dir), launcher='pytorch', model=overflow_model(2 if apex else -1),
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None,
                                        broadcast_buffers=False)),
        train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epochs=2),
        train_dataloader=dict(dataset=toy_dataset(), batch_size=4,
                              sampler=dict(type='ResumableSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='NpuFusedSGD', lr=0.1, momentum=0.9,
                                          weight_decay=1e-4)),
        default_hooks=hooks, custom_hooks=[record], **overrides)
    runner.train()
    return runner, record


def _weights(runner):
    return {k: v.clone() for k, v in runner.model.module.state_dict().items()}


def _apex_on() -> bool:
    return 'apex.amp' in sys.modules  # the standin_apex fixture is in place


def _train_and_resume(tmp_path):
    """An uninterrupted run, and a fresh one resumed from its mid-epoch checkpoint (the NPU
    generator reseeded differently first: only the checkpoint can put it back)."""
    full, full_record = _run(tmp_path / 'full', apex=_apex_on(), npu_seed=0)
    saved = torch.load(str(tmp_path / 'full' / RESUME_FROM), weights_only=True)
    if _apex_on():
        sys.modules['apex.amp'].reset()  # what a new process starts with
    resumed, resumed_record = _run(tmp_path / 'resumed', apex=_apex_on(), npu_seed=1234,
                                   resume=True, load_from=str(tmp_path / 'full' / RESUME_FROM))
    return full, full_record, saved, resumed, resumed_record


def _assert_npu_run(runner, optimizer_cls):
    assert dist.get_backend() == 'hccl'  # ResNeStRunner's process group on the NPU
    assert torch.npu.current_device() == LOCAL_RANK
    assert isinstance(runner.model, MMDistributedDataParallel)
    assert type(runner.optim_wrapper.optimizer) is optimizer_cls
    assert runner.iter == 8 and runner.epoch == 2


def _assert_resumed_exactly(full, full_record, saved, resumed, resumed_record):
    # the NPU generator at the save, in the checkpoint, and back in place after the resume
    at_save = saved['meta']['run_state']['random_states'][0]['accelerator']
    assert torch.equal(at_save, full_record.rng[7])  # after iteration 6's draw
    assert not torch.equal(full_record.rng[7], full_record.rng[6])  # the draws advance it
    assert sorted(resumed_record.rng) == [7, 8]  # only the rest of epoch 2 was trained
    assert torch.equal(resumed_record.rng[7], at_save)
    assert torch.equal(torch.npu.get_rng_state(), full_record.rng_after[8])
    assert resumed.train_loop.iters_this_process == 2
    assert torch.npu.STATE['storages_loaded'] > 0  # Runner.resume: map_location='npu'
    final, expected = _weights(resumed), _weights(full)
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[k], expected[k]) for k in expected), \
        'the resumed run ended with other weights than the uninterrupted one'


@pytest.mark.slow
def test_contract_torch_npu_fused_sgd_run_resumes_mid_epoch_exactly(one_npu_process,
                                                                    tmp_path):
    """Contract test (torch_npu stand-in): NpuFusedSGD from the config is torch_npu's on an
    NPU, in the configured OptimWrapper (not mmengine's forced AmpOptimWrapper of SoC 104); a
    resume from iter_6.pth puts the NPU generator back where it was at the save, and ends with
    the uninterrupted run's weights, bit for bit (momentum from the checkpoint into torch_npu's
    combined buffers)."""
    torch_npu = one_npu_process
    full, full_record, saved, resumed, resumed_record = _train_and_resume(tmp_path)
    for runner in (full, resumed):
        _assert_npu_run(runner, torch_npu.optim.NpuFusedSGD)
        assert type(runner.optim_wrapper) is OptimWrapper
    assert torch_npu.npu.STATE['set_device_calls'] == [LOCAL_RANK]  # one group, set up once
    assert 'apex_amp' not in saved['optimizer']
    _assert_resumed_exactly(full, full_record, saved, resumed, resumed_record)


@pytest.mark.slow
def test_contract_apex_amp_run_resumes_its_loss_scaler_and_the_npu_rng(one_npu_process,
                                                                        standin_apex, tmp_path):
    """Contract test (torch_npu and apex stand-ins): with ApexAmpHook, the config's NpuFusedSGD
    becomes apex's, under amp O1 with dynamic loss scaling and combined gradients; iteration 3
    overflows once scaled (skipped, scale 2^16 -> 2^15). A resume from iter_6.pth restores the
    loss scaler (loss_scale 2^15, 3 unskipped steps) and the NPU generator as they were at the
    save, and ends with the uninterrupted run's weights and loss-scaler state."""
    import apex.optimizers

    from resnest_mm.engine.optimizers import ApexAmpOptimWrapper
    full, full_record, saved, resumed, resumed_record = _train_and_resume(tmp_path)
    for runner in (full, resumed):
        _assert_npu_run(runner, apex.optimizers.NpuFusedSGD)
        assert type(runner.optim_wrapper) is ApexAmpOptimWrapper
    scaler_at_save = {'loss_scaler0': {'loss_scale': 2.0**15, 'unskipped': 3}}
    assert full_record.amp[3] == {'loss_scaler0': {'loss_scale': 2.0**16, 'unskipped': 2}}
    assert full_record.amp[7] == saved['optimizer']['apex_amp'] == scaler_at_save
    assert resumed_record.amp[7] == scaler_at_save  # loaded into the fresh amp before step 7
    assert resumed_record.final_amp == full_record.final_amp == {
        'loss_scaler0': {'loss_scale': 2.0**15, 'unskipped': 5}}
    assert [c for c in standin_apex.CALLS if c[0] == 'load_state_dict'] == [
        ('load_state_dict', scaler_at_save)]
    _assert_resumed_exactly(full, full_record, saved, resumed, resumed_record)


def test_standin_loads_checkpoints_onto_the_simulated_npu(tmp_path):
    """Stand-in self-test: inside the simulation ``torch.load(map_location='npu')`` (what
    mmengine's ``Runner.resume`` asks on an NPU) restores onto the stand-in NPU (CPU tensors),
    refuses a device the node lacks, and is gone afterwards."""
    from tests.helpers.standins import npu_simulation
    path = str(tmp_path / 'state.pth')
    torch.save({'w': torch.arange(3.)}, path)
    with npu_simulation() as torch_npu:
        loaded = torch.load(path, map_location='npu:7', weights_only=True)
        assert torch.equal(loaded['w'], torch.arange(3.)) and loaded['w'].device.type == 'cpu'
        assert torch_npu.npu.STATE['storages_loaded'] == 1
        with pytest.raises(RuntimeError, match='Invalid device ordinal 8'):
            torch.load(path, map_location='npu:8', weights_only=True)
    with pytest.raises(RuntimeError, match='tagged with npu'):
        torch.load(path, map_location='npu', weights_only=True)
