"""What clusters do to long runs, done for real: signals sent to the training process, a rank
SIGKILLed under torchrun --max-restarts, NaN on one rank, two torchrun agents meeting through
c10d, a second run in the same work dir, checkpoints pruned across resumes.

The multi-process runs go through tools/train.py and tools/dist_train.sh on a tiny ResNet
(tests/helpers/configs/tiny_resnet_digits.py: the demo recipe with mmpretrain's Mixup, which
draws from the global RNGs, so only a resume that restores every rank's RNG states is bit for
bit); where the network does not matter, the toy runner.
"""
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from resnest_mm.engine.runner import StoppedBySignalError
from resnest_mm.engine.runner.work_dir_lock import LOCK_NAME, WorkDirLock
from resnest_mm.utils.errors import ExplainedRuntimeError
from tests.helpers.tiny_config import TINY, data_options, free_port
from tests.helpers.toy_runner import ROOT, make_runner, toy_dataset


@pytest.fixture(scope='module')
def data(tiny_data):
    return tiny_data


_options = data_options


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', **extra)
    for name in ('INTERRUPT', 'MAX_RESTARTS', 'TORCHELASTIC_RESTART_COUNT', 'NNODES',
                 'NODE_RANK', 'RDZV'):
        if name not in extra:
            env.pop(name, None)
    return env


def _train(data, work_dir, *args, env=None, extra=()):
    cmd = [sys.executable, 'tools/train.py', TINY, '--work-dir', str(work_dir), *args,
           *_options(data, *extra)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env or _env())


def _dist(data, work_dir, nproc, env, *args):
    cmd = ['bash', 'tools/dist_train.sh', TINY, str(nproc), '--work-dir', str(work_dir), *args,
           *_options(data)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _weights(work_dir):
    return torch.load(os.path.join(work_dir, 'epoch_2.pth'), weights_only=True)['state_dict']


def _trace(work_dir, rank=0):
    rows = [line.split() for line in open(os.path.join(work_dir, f'trace-rank{rank}.txt'))]
    return {int(i): (lr, loss) for i, lr, loss in rows}  # a replayed iteration overwrites


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# 2 workers: with 0 the pipeline's per-sample seeding runs in the main process and moves the
# global numpy RNG that Mixup draws from, so runs compare like for like
WORKERS = ('train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True')


@pytest.fixture(scope='module')
def uninterrupted(data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    result = _train(data, work_dir, extra=WORKERS)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


@pytest.fixture(scope='module')
def uninterrupted_two(data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted_two')
    result = _finish(_dist(data, work_dir, 2, _env(PORT=str(free_port()))))
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def _no_process_mentions(text: str) -> bool:
    for cmdline in glob.glob('/proc/[0-9]*/cmdline'):
        try:
            if text.encode() in open(cmdline, 'rb').read():
                return False
        except OSError:
            continue
    return True


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_the_resume_is_bit_identical(data, uninterrupted,
                                                                  tmp_path):
    """SIGTERM after iteration 5 of 12 (epoch 1, 2 data-loader workers): the iteration finishes,
    iter_5.pth is written, one sentence, exit status 143, no worker left; --resume then ends
    with the uninterrupted run's weights and its LR and loss at every iteration."""
    stopped = _train(data, tmp_path, env=_env(INTERRUPT='5:0:TERM'), extra=WORKERS)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert 'Traceback' not in stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    python = 'python' if shutil.which('python') and os.path.realpath(
        shutil.which('python')) == os.path.realpath(sys.executable) else sys.executable
    command = shlex.join([python, 'tools/train.py', TINY, '--work-dir', str(tmp_path),
                          *_options(data, *WORKERS), '--resume'])
    assert line == (f'tools/train.py: error: SIGTERM received: training stopped after iteration '
                    f'5 (epoch 1, batch 5/6); saved {tmp_path}/iter_5.pth. Continue with: '
                    f'{command}')
    assert open(tmp_path / 'last_checkpoint').read() == f'{tmp_path}/iter_5.pth'
    time.sleep(1)
    assert _no_process_mentions(str(tmp_path)), 'a data-loader worker outlived the run'
    resumed = _train(data, tmp_path, '--resume', extra=WORKERS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming from ' + f'{tmp_path}/iter_5.pth' in resumed.stdout
    assert _trace(tmp_path) == _trace(uninterrupted)
    _same_weights(_weights(tmp_path), _weights(uninterrupted))


@pytest.mark.slow
@pytest.mark.parametrize('sig,status', [('INT', 130), ('USR1', 138)])
def test_sigint_and_sigusr1_stop_the_same_way(data, tmp_path, sig, status):
    stopped = _train(data, tmp_path, env=_env(INTERRUPT=f'3:0:{sig}'))
    assert stopped.returncode == status, stopped.stderr[-3000:]
    assert 'Traceback' not in stopped.stderr and 'KeyboardInterrupt' not in stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].startswith(
        f'tools/train.py: error: SIG{sig} received: training stopped after iteration 3')
    assert os.path.isfile(tmp_path / 'iter_3.pth')


@pytest.mark.slow
def test_a_killed_rank_restarts_the_group_which_resumes_by_itself(data, uninterrupted_two,
                                                                  tmp_path):
    """2 ranks; rank 1 SIGKILLed after iteration 5 (the last checkpoint is iter_4); with
    MAX_RESTARTS=1 torchrun restarts the group, which resumes from the newest checkpoint without
    a flag and ends bit-identical to an uninterrupted 2-rank run (Mixup: both ranks' RNGs)."""
    proc = _dist(data, tmp_path, 2, _env(PORT=str(free_port()), MAX_RESTARTS='1',
                                          INTERRUPT='5:1:KILL'))
    result = _finish(proc)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = result.stdout + result.stderr
    assert 'restart 1 of this job: resuming from the newest complete checkpoint' in logs
    assert f'Resuming from {tmp_path}/iter_4.pth' in logs
    for rank in (0, 1):
        assert _trace(tmp_path, rank) == _trace(uninterrupted_two, rank)
    _same_weights(_weights(tmp_path), _weights(uninterrupted_two))


@pytest.mark.slow
def test_nan_on_one_rank_stops_both_with_the_sentence(data, tmp_path):
    start = time.monotonic()
    result = _finish(_dist(data, tmp_path, 2, _env(PORT=str(free_port()), INTERRUPT='3:1:NAN')))
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert 'Iteration 3 (epoch 1): the loss is nan; training stopped' in result.stderr
    assert ('Iteration 3 (epoch 1): the loss is not finite on another rank (rank 0 has'
            in result.stderr)
    assert elapsed < 120, elapsed  # both stopped at once, not after a collective timeout


@pytest.mark.slow
def test_two_agents_meet_through_c10d_and_train_as_one_agent_with_two(data, uninterrupted_two,
                                                                      tmp_path):
    """Multi-node on one machine: NNODES=2 with the c10d rendezvous, one process per agent,
    against one agent with two processes: the same weights."""
    env = _env(PORT=str(free_port()), NNODES='2', RDZV='c10d')
    agents = [_dist(data, tmp_path, 1, dict(env, NODE_RANK=str(i))) for i in (0, 1)]
    results = [_finish(agent) for agent in agents]
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    _same_weights(_weights(tmp_path), _weights(uninterrupted_two))


# --- in-process: lock, pruning, signals with the toy runner -----------------------------------

LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=4)


def _loader():
    return dict(dataset=toy_dataset(16), batch_size=4,
                sampler=dict(type='ResumableSampler', shuffle=True),
                collate_fn=dict(type='default_collate'))


def _toy(work_dir, max_epochs=4, keep=2, **kwargs):
    return make_runner(str(work_dir), train_cfg=dict(LOOP, max_epochs=max_epochs),
                       train_dataloader=_loader(),
                       default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                                          interval=1, max_keep_ckpts=keep)),
                       **kwargs)


def _checkpoints(work_dir):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(work_dir, '*.pth')))


@pytest.mark.slow
def test_a_second_run_in_the_same_work_dir_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from resnest_mm.engine.runner.work_dir_lock '
         'import WorkDirLock; WorkDirLock(sys.argv[1]).acquire(); print("held", flush=True); '
         'time.sleep(60)', str(tmp_path)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(ExplainedRuntimeError, match=rf'{tmp_path} is in use by another '
                                                        rf'training run \(pid {holder.pid} on '):
            _toy(tmp_path).train()
        assert _checkpoints(tmp_path) == []
    finally:
        holder.kill()
        holder.wait()
    # the holder died without letting go: its lock is taken over, and the log says whose it was
    runner = _toy(tmp_path, max_epochs=1)
    runner.train()
    log = open(sorted(glob.glob(os.path.join(str(tmp_path), '*', '*.log')))[-1]).read()  # newest
    assert f'took over {tmp_path}/{LOCK_NAME}, left by a run that no longer holds it ' \
           f'(pid {holder.pid} on' in log
    assert open(tmp_path / LOCK_NAME).read() == ''  # released at the end


def test_max_keep_ckpts_holds_over_resumes_and_counts_a_signal_checkpoint(tmp_path):
    """max_keep_ckpts=2 across a stop at SIGTERM and two resumes: the checkpoint written at the
    signal counts and is pruned like any other, and the run ends with its 2 newest."""
    from mmengine.hooks import Hook

    class SigtermAt(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 10:
                os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StoppedBySignalError) as stopped:
        _toy(tmp_path, custom_hooks=[SigtermAt()]).train()
    assert stopped.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers put back
    assert _checkpoints(tmp_path) == ['epoch_2.pth', 'iter_10.pth']
    _toy(tmp_path, resume=True).train()
    assert _checkpoints(tmp_path) == ['epoch_3.pth', 'epoch_4.pth']
    _toy(tmp_path, max_epochs=6, resume=True).train()
    assert _checkpoints(tmp_path) == ['epoch_5.pth', 'epoch_6.pth']


def test_lock_is_reentrant_free_and_released(tmp_path):
    lock = WorkDirLock(str(tmp_path))
    lock.acquire()
    other = WorkDirLock(str(tmp_path))
    with pytest.raises(ExplainedRuntimeError, match='in use by another training run'):
        other.acquire()
    lock.release()
    other.acquire()
    other.release()


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_both_at_the_same_iteration(data, uninterrupted_two,
                                                               tmp_path):
    """SIGTERM reaches rank 1 only: both ranks agree, stop after the same iteration with its
    checkpoint on disk (rank 0 writes it, rank 1 waits), and the resume is bit-identical."""
    result = _finish(_dist(data, tmp_path, 2, _env(PORT=str(free_port()), INTERRUPT='5:1:TERM')))
    assert result.returncode != 0  # torchrun reports its own status for the stopped group
    assert result.stderr.count('SIGTERM received: training stopped after iteration 5') == 2
    assert os.path.isfile(tmp_path / 'iter_5.pth')
    resumed = _finish(_dist(data, tmp_path, 2, _env(PORT=str(free_port())), '--resume'))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        assert _trace(tmp_path, rank) == _trace(uninterrupted_two, rank)
    _same_weights(_weights(tmp_path), _weights(uninterrupted_two))


class _SigtermAt:
    """A hook sending SIGTERM to this process after iteration ``at``."""

    def __new__(cls, at):
        from mmengine.hooks import Hook

        class SigtermAt(Hook):
            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                if runner.iter + 1 == at:
                    os.kill(os.getpid(), signal.SIGTERM)

        return SigtermAt()


def test_a_signal_stops_an_iteration_based_loop_too(tmp_path):
    hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=5))
    with pytest.raises(StoppedBySignalError, match=r'after iteration 7 \(epoch 1\); saved '):
        make_runner(str(tmp_path), train_cfg=dict(by_epoch=False, max_iters=12),
                    default_hooks=hooks, custom_hooks=[_SigtermAt(7)]).train()
    assert _checkpoints(tmp_path) == ['iter_5.pth', 'iter_7.pth']


def test_a_signal_at_an_epochs_last_batch_resumes_in_a_changed_world(tmp_path):
    """Saved after the 4th of 4 batches: an epoch boundary, so another batch size may resume
    it and train every remaining epoch in full."""
    with pytest.raises(StoppedBySignalError):
        _toy(tmp_path, custom_hooks=[_SigtermAt(4)]).train()
    loader = dict(_loader(), batch_size=8)
    runner = make_runner(str(tmp_path), train_cfg=dict(LOOP, max_epochs=4),
                         train_dataloader=loader, resume=True,
                         default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                                            interval=1, max_keep_ckpts=2)))
    runner.train()
    assert runner.train_loop.iters_this_process == 6 and runner.epoch == 4


def test_the_newest_epoch_checkpoint_outlives_the_count(tmp_path):
    hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, iter_interval=1,
                                 max_keep_ckpts=2))
    make_runner(str(tmp_path), train_cfg=dict(LOOP, max_epochs=2), train_dataloader=_loader(),
                default_hooks=hooks, custom_hooks=[]).train()
    # iteration checkpoints every step crowd the count; epoch_2 (newest epoch) stays
    assert 'epoch_2.pth' in _checkpoints(tmp_path) and 'epoch_1.pth' not in _checkpoints(tmp_path)


def test_a_restart_before_the_first_checkpoint_starts_from_load_from(tmp_path):
    """What the command asked for when the work dir has nothing yet: the fine-tuning weights
    (on main a restart dropped them and trained from random weights)."""
    from mmengine.hooks import Hook
    weights = _toy(tmp_path / 'source', max_epochs=1).train().state_dict()
    seen = {}

    class FirstWeights(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.setdefault('w', {k: v.clone() for k, v in runner.model.state_dict().items()})

    runner = _toy(tmp_path / 'restarted', resume=True, custom_hooks=[FirstWeights()],
                  cfg=dict(resume_fallback=dict(path=str(tmp_path / 'source' / 'epoch_1.pth'),
                                                resume=False)))
    runner.train()
    assert all(torch.equal(seen['w'][k], weights[k]) for k in weights)
