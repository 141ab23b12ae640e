"""tools/slurm_train.sh with stand-ins for Slurm's commands (there is no Slurm here): a fake
``srun`` that really starts one process per task with the SLURM_* variables a step has, and fake
``sbatch`` / ``scontrol`` that record how they were called."""
import json
import os
import shutil
import stat
import subprocess

import pytest

from tests.helpers.images import write_image_folder
from tests.helpers.tiny_config import TINY, free_port
from tests.helpers.toy_runner import ROOT

pytestmark = pytest.mark.slow  # subprocesses or whole runs

# srun: --ntasks=N tasks of the command, each with the variables of a one-node step; or, with
# FAKE_SRUN_STATUS set, only record the call and exit with that status.
SRUN = r'''#!/usr/bin/env python3
import os, subprocess, sys
args = sys.argv[1:]
with open(os.environ['FAKE_LOG'], 'a') as f:
    f.write('srun ' + ' '.join(args) + '\n')
if os.environ.get('FAKE_SRUN_STATUS'):
    sys.exit(int(os.environ['FAKE_SRUN_STATUS']))
options = [a for a in args if a.startswith('-')]
ntasks = int(next(a.split('=')[1] for a in args if a.startswith('--ntasks=')))
command = args[next(i for i, a in enumerate(args) if not a.startswith('-')
                    and not args[i - 1] == '-p'):]
procs = [subprocess.Popen(command, env=dict(
    os.environ, SLURM_PROCID=str(i), SLURM_NTASKS=str(ntasks), SLURM_LOCALID=str(i),
    SLURM_NODELIST='localhost', MASTER_ADDR='127.0.0.1')) for i in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
'''
RECORD = '''#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
'''


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', SRUN), ('sbatch', RECORD), ('scontrol', RECORD)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / 'calls.txt'
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', FAKE_LOG=str(log),
               PYTHONPATH=ROOT, OMP_NUM_THREADS='1', MASTER_PORT=str(free_port()),
               PYTHON=os.path.join(ROOT, '.venv/bin/python') if os.path.isfile(
                   os.path.join(ROOT, '.venv/bin/python')) else 'python3')
    env.pop('INTERRUPT', None)
    return env, log


def _script(env, *args, **extra):
    return subprocess.run(['bash', 'tools/slurm_train.sh', *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(env, **extra))


def test_two_tasks_train_with_gloo_through_the_slurm_launcher(fake_slurm, tmp_path):
    env, log = fake_slurm
    data = tmp_path / 'data'
    for split in ('train', 'val'):
        write_image_folder(str(data / split), ['a', 'b'], per_class=4, size=32)
    work = tmp_path / 'work'
    result = _script(env, 'part', 'job', TINY, str(work), '--cfg-options',
                     *(f'{loader}.dataset.data_root={data}' for loader in
                       ('train_dataloader', 'val_dataloader', 'test_dataloader')),
                     DEVICES='2', DEVICES_PER_NODE='2')
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.load(open(work / 'summary.json'))
    assert summary['world_size'] == 2 and summary['device'] == 'cpu'
    call = log.read_text()
    assert '--launcher slurm' in call and '--signal=USR1@120' in call
    assert '--gres' not in call  # no accelerator name guessed


def test_gres_is_the_clusters_name_for_its_devices(fake_slurm):
    env, log = fake_slurm
    result = _script(env, 'part', 'job', TINY, GRES='npu:8', FAKE_SRUN_STATUS='0')
    assert result.returncode == 0, result.stderr
    assert '--gres=npu:8' in log.read_text()


def test_requeue_submits_a_batch_job_that_requeues_itself_after_a_signal(fake_slurm, tmp_path):
    env, log = fake_slurm
    result = _script(env, 'part', 'job', TINY, 'work', REQUEUE='1', SIGNAL_SECONDS='300')
    assert result.returncode == 0, result.stderr
    (submit, ) = log.read_text().splitlines()
    assert submit.startswith('sbatch ') and '--requeue' in submit
    assert '--signal=USR1@300' in submit
    # sbatch runs a copy of the script from its spool folder: the checkout travels along
    assert f'--export=ALL,RESNEST_MM_IN_BATCH=1,RESNEST_MM_ROOT={ROOT}' in submit
    assert submit.endswith(f'{ROOT}/tools/slurm_train.sh part job tests/helpers/configs/'
                           'tiny_resnet_digits.py work')
    log.unlink()
    # inside the batch job, run from a copy in the spool folder: the step stopped at SIGUSR1
    # after saving (status 138)
    spool = tmp_path / 'spool' / 'job4242'
    spool.mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, 'tools/slurm_train.sh'), spool / 'slurm_script')
    result = subprocess.run(['bash', str(spool / 'slurm_script'), 'part', 'job', TINY, 'work'],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=dict(env, REQUEUE='1', RESNEST_MM_IN_BATCH='1',
                                     RESNEST_MM_ROOT=ROOT, SLURM_JOB_ID='4242',
                                     FAKE_SRUN_STATUS='138'))
    assert result.returncode == 138
    calls = log.read_text().splitlines()
    assert calls[0].startswith('srun ') and f'{ROOT}/tools/train.py' in calls[0]
    assert calls[1] == 'scontrol requeue 4242'
    assert 'requeueing job 4242, which resumes from its newest checkpoint' in result.stderr
    log.unlink()
    result = _script(env, 'part', 'job', TINY, 'work', REQUEUE='1', RESNEST_MM_IN_BATCH='1',
                     SLURM_JOB_ID='4242', FAKE_SRUN_STATUS='1')
    assert result.returncode == 1 and 'scontrol' not in log.read_text()  # a failure is final
