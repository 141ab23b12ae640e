"""Runs that end right (issue 21): the work-dir lock before the first byte, resume candidates
ordered by the position recorded inside them, a stop signal during validation, a last batch of
one sample, the "Continue with" command."""
import glob
import os
import signal
import subprocess
import sys

import pytest
from mmengine.hooks import Hook

from resnest_mm.engine.runner import StoppedBySignalError
from resnest_mm.engine.runner.work_dir_lock import LOCK_NAME
from resnest_mm.utils.errors import ExplainedRuntimeError, ExplainedValueError
from tests.helpers.toy_runner import ROOT, make_runner, toy_dataset

LOOP = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)


def _loader(n=16, batch=4, **extra):
    return dict(dataset=toy_dataset(n), batch_size=batch,
                sampler=dict(type='ResumableSampler', shuffle=True),
                collate_fn=dict(type='default_collate'), **extra)


def _toy(work_dir, hooks=None, **kwargs):
    kwargs.setdefault('train_cfg', dict(LOOP))
    kwargs.setdefault('train_dataloader', _loader())
    return make_runner(str(work_dir), default_hooks=hooks or dict(
        checkpoint=dict(type='AtomicCheckpointHook', interval=1)), **kwargs)


def test_a_refused_run_writes_nothing_into_the_work_dir(tmp_path):
    """Another process holds the lock: the runner is refused while it is built, before
    mmengine's log folder, log file and config dump exist (they were left behind before)."""
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from resnest_mm.engine.runner.work_dir_lock '
         'import WorkDirLock; WorkDirLock(sys.argv[1]).acquire(); print("held", flush=True); '
         'time.sleep(60)', str(tmp_path)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(ExplainedRuntimeError, match='is in use by another training run'):
            _toy(tmp_path, cfg=dict(marker='refused'))
        assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()
    # a runner built but never trained does not lock its own process out of the work dir
    _toy(tmp_path)
    runner = _toy(tmp_path)
    runner.train()
    assert open(tmp_path / LOCK_NAME).read() == ''  # released when training ended


def _pths(work_dir):
    return sorted((p for p in os.listdir(work_dir) if p.endswith('.pth')),
                  key=lambda name: int(name.split('_')[1].split('.')[0]))


def test_resume_and_pruning_follow_the_recorded_position_not_file_times(tmp_path):
    """iter_4.pth restored from a backup (its files newer on disk than iter_12's): --resume
    without a path continues from iter_12, and max_keep_ckpts deletes iter_4, not the newer
    checkpoints (before: it resumed at iteration 4 and pruned iter_8 ... iter_12)."""
    def hooks(keep):
        return dict(checkpoint=dict(type='AtomicCheckpointHook', interval=10, iter_interval=2,
                                    save_last=False, max_keep_ckpts=keep))

    _toy(tmp_path, hooks(-1), train_cfg=dict(LOOP, max_epochs=3)).train()
    assert _pths(tmp_path) == [f'iter_{i}.pth' for i in (2, 4, 6, 8, 10, 12)]
    newer = os.stat(tmp_path / 'iter_12.pth.sha256').st_mtime + 100
    for name in ('iter_4.pth', 'iter_4.pth.sha256'):
        os.utime(tmp_path / name, (newer, newer))
    resumed = _toy(tmp_path, hooks(3), train_cfg=dict(LOOP, max_epochs=4), resume=True)
    resumed.train()
    assert resumed.train_loop.iters_this_process == 4  # iterations 13 to 16
    assert _pths(tmp_path) == ['iter_12.pth', 'iter_14.pth', 'iter_16.pth']


class _SigtermInValidation(Hook):
    """Sends SIGTERM to this process after validation batch ``at`` and counts the validation
    batches and training iterations that ran after it."""

    def __init__(self, at):
        self.at, self.sent, self.val_after, self.train_after = at, False, 0, 0

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.sent:
            self.val_after += 1
        elif batch_idx + 1 == self.at:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.train_after += self.sent


def test_a_signal_during_validation_stops_within_one_batch_then_saves(tmp_path):
    """SIGTERM after validation batch 1 of 4 (end of epoch 1): the validation stops there, no
    training iteration runs, and the end of epoch 1 is saved and resumable (before: the rest
    of validation and one more iteration ran first)."""
    from mmengine.evaluator import BaseMetric, Evaluator

    class Count(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(len(data_samples))

        def compute_metrics(self, results):
            return dict(seen=sum(results))

    probe = _SigtermInValidation(at=1)
    val = dict(val_dataloader=dict(dataset=toy_dataset(16), batch_size=4,
                                   sampler=dict(type='DefaultSampler', shuffle=False),
                                   collate_fn=dict(type='default_collate')),
               val_cfg=dict(), val_evaluator=Evaluator(Count()))
    with pytest.raises(StoppedBySignalError) as stopped:
        _toy(tmp_path, custom_hooks=[probe], **val).train()
    assert (probe.val_after, probe.train_after) == (0, 0)
    assert str(stopped.value).startswith(
        'SIGTERM received: training stopped after iteration 4 (during validation, after batch '
        f'1/4; validation is not resumed); saved {tmp_path}/epoch_1.pth. Continue with: ')
    assert _pths(tmp_path) == ['epoch_1.pth']
    resumed = _toy(tmp_path, resume=True)
    resumed.train()
    assert resumed.train_loop.iters_this_process == 4 and resumed.epoch == 2


@pytest.mark.parametrize('path', sorted(
    p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p))
def test_every_training_config_drops_the_last_incomplete_batch(path):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    assert cfg.train_dataloader.get('drop_last') is True, path


def test_a_batch_of_one_sample_gets_a_sentence_naming_drop_last(tmp_path):
    """17 samples in batches of 4: the 5th batch holds 1 sample, which BatchNorm refuses."""
    from tests.helpers.toy_runner import ToyModel
    runner = _toy(tmp_path, model=ToyModel(bn=True), train_dataloader=_loader(n=17))
    with pytest.raises(ExplainedValueError) as refused:
        runner.train()
    assert str(refused.value) == (
        'Iteration 5 (epoch 1, batch 5/5): a batch of 1 sample reached a BatchNorm layer in '
        'training mode, which cannot normalise a single value per channel (17 samples in '
        'batches of 4 leave a last batch of 1). Set train_dataloader.drop_last=True (the '
        'resnest_mm configs do), or a batch size that leaves more than one sample in the last '
        'batch.')
    # and with drop_last the same data trains
    _toy(tmp_path / 'dropped', model=ToyModel(bn=True),
         train_dataloader=_loader(n=17, drop_last=True)).train()


@pytest.mark.slow
def test_the_continue_with_command_runs_as_printed(tiny_data, tmp_path):
    """A work dir with a space, the data and a 1-epoch schedule given by --cfg-options, SIGTERM
    after iteration 3: the printed command, run by the shell as it stands, resumes the run and
    ends it after its 1 epoch (before: unquoted, and without the run's --cfg-options)."""
    from tests.helpers.tiny_config import TINY, data_options
    work = tmp_path / 'my runs' / 'tiny'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', INTERRUPT='3:0:TERM')
    stopped = subprocess.run(
        [sys.executable, 'tools/train.py', TINY, '--work-dir', str(work),
         *data_options(tiny_data, 'train_cfg.max_epochs=1')],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    command = stopped.stderr.strip().splitlines()[-1].split('. Continue with: ', 1)[1]
    del env['INTERRUPT']
    resumed = subprocess.run(['bash', '-c', command], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'Resuming from {work}/iter_3.pth' in resumed.stdout + resumed.stderr
    assert os.path.isfile(work / 'epoch_1.pth') and not os.path.exists(work / 'epoch_2.pth')


@pytest.mark.slow
def test_evaluation_refuses_classes_other_than_the_checkpoints(tiny_data, tmp_path):
    """A checkpoint trained on classes a, b scored on val folders a, c (a class renamed): one
    sentence naming the differences (before: scored, exit 0, no word); --allow-other-classes
    evaluates anyway."""
    import shutil

    from resnest_mm.frontends.cli import test, train
    from tests.helpers.tiny_config import TINY, data_options
    train([TINY, '--work-dir', str(tmp_path / 'train'),
           *data_options(tiny_data, 'train_cfg.max_epochs=1')])
    checkpoint = str(tmp_path / 'train' / 'epoch_1.pth')
    renamed = tmp_path / 'renamed'
    shutil.copytree(tiny_data, renamed)
    os.rename(renamed / 'val' / 'b', renamed / 'val' / 'c')
    args = [TINY, checkpoint, '--work-dir', str(tmp_path / 'test'), *data_options(renamed)]
    with pytest.raises(ExplainedValueError) as refused:
        test(args)
    assert str(refused.value) == (
        f"{checkpoint} was trained on 2 classes and the test data ({renamed}) has 2; only the "
        "checkpoint has ['b'], only the data has ['c']. Its predictions would be scored against "
        "other labels. Evaluate on data with the checkpoint's classes, or pass "
        '--allow-other-classes (allow_other_classes=True in the config) if the labels do match '
        'although the names differ.')
    assert 'accuracy/top1' in test([*args, '--allow-other-classes'])


# --- write failures name the real thing ------------------------------------------------------

@pytest.mark.parametrize('name', [LOCK_NAME, 'last_checkpoint'])
def test_a_folder_where_a_run_file_goes_is_refused_before_training(tmp_path, name):
    """Before: IsADirectoryError blamed on "the config" (the lock), or a traceback after the
    first checkpoint was saved (last_checkpoint)."""
    from resnest_mm.utils.errors import ExplainedError
    os.mkdir(tmp_path / name)
    with pytest.raises(ExplainedError) as refused:
        _toy(tmp_path).train()
    assert str(refused.value) == (f'{tmp_path}/{name} is a folder where a file of the run goes: '
                                  'move or remove that folder, or choose another place')
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.pth')]


def test_a_part_folder_is_left_alone_and_training_runs(tmp_path, caplog):
    """Unfinished files (a dot, the file name, a random infix, ``.part``) are removed when
    training starts; a folder with such a name is not one of them (before: IsADirectoryError,
    blamed on the config)."""
    os.mkdir(tmp_path / '.epoch_1.pth.abc.part')
    runner = _toy(tmp_path)
    runner.train()
    assert runner.epoch == 2 and os.path.isdir(tmp_path / '.epoch_1.pth.abc.part')


def _in_own_mounts(script, tmp_path):
    import shutil
    if shutil.which('unshare') is None:
        pytest.fail('unshare (util-linux) is needed to mount a file system of the test\'s own')
    return subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))


@pytest.mark.slow
def test_a_read_only_work_dir_gets_a_sentence_naming_it(tiny_data, tmp_path):
    """The work dir bind-mounted read-only (its own mount namespace): one sentence naming the
    work dir (before: "the run could not be set up from the config")."""
    from tests.helpers.tiny_config import TINY, data_options
    work = tmp_path / 'ro'
    work.mkdir()
    options = ' '.join(data_options(tiny_data))
    result = _in_own_mounts(f'mount --bind {work} {work} && mount -o remount,ro,bind {work} && '
                            f'{sys.executable} tools/train.py {TINY} --work-dir {work} {options}',
                            tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f'tools/train.py: error: the work dir {work} cannot be written (Read-only file system): '
        'make it writable, or choose another place')


FILL_AT_ITERATION_1 = '''
import sys
from mmengine.hooks import Hook
from resnest_mm.utils.errors import run_tool
from tests.helpers.toy_runner import make_runner

class FillTheDisk(Hook):
    priority = 'HIGHEST'  # before the logger writes the iteration's log line and scalars

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == 1:
            try:
                with open(sys.argv[1] + '/filler', 'wb') as f:
                    while True:
                        f.write(bytes(4096))
                        f.flush()
            except OSError:
                pass

run_tool(lambda: make_runner(sys.argv[1], custom_hooks=[FillTheDisk()]).train(), 'toy')
'''


@pytest.mark.slow
def test_a_full_disk_while_logging_gets_a_sentence(tmp_path):
    """The work dir on a 1 MB tmpfs that fills up at iteration 1, before mmengine writes that
    iteration's log line and scalars.json: one sentence naming the work dir's disk (before: an
    OSError traceback)."""
    work = tmp_path / 'small'
    work.mkdir()
    (tmp_path / 'fill.py').write_text(FILL_AT_ITERATION_1)
    result = _in_own_mounts(f'mount -t tmpfs -o size=1m tmpfs {work} && {sys.executable} '
                            f'{tmp_path}/fill.py {work}', tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f'toy: error: Iteration 1 (epoch 1): no space left on the disk of '
                           f'the work dir {work} (0 bytes free; No space left on device) while '
                           'the run wrote its log, scalars.json or another file of a hook. The '
                           'checkpoints written so far are complete'), line


# --- a distributed run that ended well exits 0 -------------------------------------------------

END_AFTER_A_COLLECTIVE = '''
import atexit, os, sys
import torch, torch.distributed as dist
os.environ.update(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                  MASTER_PORT=sys.argv[1])
from resnest_mm.engine.runner.process_group import end_process, init_process_group
init_process_group('pytorch', dict(backend='gloo'))
out = [None]
dist.all_gather_object(out, {'run_state': 1})
atexit.register(lambda: print('interpreter teardown ran', flush=True))
print('left the group', flush=True)
end_process(0)
print('not reached', flush=True)
'''


def test_a_process_that_joined_a_group_ends_without_the_interpreters_teardown(tmp_path):
    """What keeps gloo's worker threads from aborting a rank at exit: after a run that ended
    well the process ends at once (atexit handlers, and the teardown gloo races, never run)."""
    from tests.helpers.tiny_config import free_port
    (tmp_path / 'end.py').write_text(END_AFTER_A_COLLECTIVE)
    result = subprocess.run([sys.executable, str(tmp_path / 'end.py'), str(free_port())],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split('\n') == ['left the group', '']


@pytest.mark.slow
def test_successful_two_rank_runs_exit_0_every_time():
    """3 consecutive 2-rank tools/dist_train.sh runs (tests/helpers/repeat_dist_train.py runs
    20 for the acceptance count: 19 of 20 before the fix, 20 of 20 after)."""
    from tests.helpers.repeat_dist_train import main
    assert main(['--runs', '3']) == 0
