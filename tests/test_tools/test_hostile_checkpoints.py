"""Checkpoints and configs from disk, as an attacker or an unlucky user makes them, through the
tools as users run them: nothing runs code, nothing damaged is used, a full disk and a typo
get one sentence (exit status 2, no traceback, no log before it)."""
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from tests.helpers.tiny_config import TINY, data_options
from tests.helpers.toy_runner import ROOT

pytestmark = pytest.mark.slow  # subprocesses or whole runs


@pytest.fixture(scope='module')
def data(tiny_data):
    return tiny_data


_options = data_options


def _run(*cmd, env=None, timeout=300):
    full = {k: v for k, v in os.environ.items() if k != 'INTERRUPT'}
    full.update(PYTHONPATH=ROOT, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full)


def _refused(result) -> str:
    """The one sentence of a refused command (exit 2, no traceback, nothing logged before)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    """A run of the tiny config to its end, and one stopped by SIGTERM after iteration 5."""
    full = tmp_path_factory.mktemp('full')
    result = _run('tools/train.py', TINY, '--work-dir', str(full), *_options(data))
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = tmp_path_factory.mktemp('stopped')
    result = _run('tools/train.py', TINY, '--work-dir', str(stopped), *_options(data),
                  env=dict(INTERRUPT='5:0:TERM'))
    assert result.returncode == 143, result.stderr[-3000:]
    return full, stopped


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _evil(path, marker, with_digest=False):
    """A checkpoint whose unpickling runs a shell command (it would create ``marker``)."""
    good = torch.load(os.path.join(os.path.dirname(path), 'good.pth'), weights_only=True) \
        if os.path.isfile(os.path.join(os.path.dirname(path), 'good.pth')) else {}
    torch.save(dict(good, state_dict=good.get('state_dict', {}), x=_Payload(marker)), path)
    if with_digest:  # whoever can write the work dir can write a matching digest too
        from resnest_mm.utils.checkpoint_io import file_sha256
        with open(path + '.sha256', 'w') as f:
            f.write(f'{file_sha256(path)}  {os.path.basename(path)}\n')


@pytest.mark.parametrize('where', ['resume_path', 'resume_auto', 'load_from', 'test', 'convert',
                                   'infer'])
def test_a_pickle_that_runs_code_is_refused_everywhere(where, data, trained, tmp_path):
    marker = tmp_path / 'PWNED'
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(trained[0] / 'epoch_2.pth', work / 'good.pth')
    evil = str(work / 'iter_99.pth')
    _evil(evil, marker, with_digest=where == 'resume_auto')
    os.remove(work / 'good.pth')
    train = ['tools/train.py', TINY, '--work-dir', str(work)]
    command = {
        'resume_path': [*train, '--resume', evil, *_options(data)],
        'resume_auto': [*train, '--resume', *_options(data)],
        'load_from': [*train, *_options(data, f'load_from={evil}')],
        'test': ['tools/test.py', TINY, evil, '--work-dir', str(work), *_options(data)],
        'convert': ['tools/model_converters/resnest_to_mm.py', evil, str(tmp_path / 'o.pth')],
        'infer': ['tools/infer.py', str(next((data / 'val' / 'a').iterdir())), '--config', TINY,
                  '--checkpoint', evil],
    }[where]
    line = _refused(_run(*command))
    assert f'{evil} is refused: it holds posix.system' in line and '--unsafe-load' in line
    assert not marker.exists(), 'the payload ran'


def _flip_bytes_inside_a_tensor(path):
    """Overwrite 8 bytes in the middle of the checkpoint's largest tensor (zip stores them
    uncompressed): the file still unpickles, only the numbers change."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if '/data/' in i.filename),
                   key=lambda i: i.file_size)
    with open(path, 'r+b') as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), 'little') for _ in range(2))
        start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(start)
        old = f.read(8)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in old))


def test_flipped_bytes_are_refused_and_resume_falls_back(data, trained, tmp_path):
    full, stopped = trained
    work = tmp_path / 'work'
    shutil.copytree(stopped, work)
    damaged = str(work / 'iter_5.pth')
    _flip_bytes_inside_a_tensor(damaged)
    # (the damage is silent to torch: the file loads, with other numbers)
    torch.load(damaged, weights_only=True)
    test = _refused(_run('tools/test.py', TINY, damaged, '--work-dir', str(tmp_path / 't'),
                         *_options(data)))
    assert f'{damaged} is damaged: its SHA-256 is ' in test and 'recorded' in test
    resume = _refused(_run('tools/train.py', TINY, '--work-dir', str(work), '--resume', damaged,
                           *_options(data)))
    assert f'{damaged} is damaged' in resume
    result = _run('tools/train.py', TINY, '--work-dir', str(work), '--resume', *_options(data))
    assert result.returncode == 0, result.stderr[-3000:]
    logs = result.stdout + result.stderr
    assert f'--resume skipped {damaged} ({damaged} is damaged' in logs
    assert f'Resuming from {work}/iter_4.pth' in logs
    ours = torch.load(work / 'epoch_2.pth', weights_only=True)['state_dict']
    reference = torch.load(full / 'epoch_2.pth', weights_only=True)['state_dict']
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_a_truncated_checkpoint_gets_the_same_sentence_from_every_tool(data, trained, tmp_path):
    cut = str(tmp_path / 'cut.pth')
    with open(trained[0] / 'epoch_2.pth', 'rb') as f:
        open(cut, 'wb').write(f.read()[:100_000])  # a copy cut short, no digest beside it
    sentence = f'{cut} cannot be read as a checkpoint: it is truncated, damaged or not a PyTorch'
    lines = [
        _refused(_run('tools/test.py', TINY, cut, '--work-dir', str(tmp_path / 't'),
                      *_options(data))),
        _refused(_run('tools/train.py', TINY, '--work-dir', str(tmp_path / 'w'), '--resume', cut,
                      *_options(data))),
        _refused(_run('tools/model_converters/resnest_to_mm.py', cut, str(tmp_path / 'o.pth'))),
        _refused(_run('tools/infer.py', str(next((data / 'val' / 'a').iterdir())), '--config',
                      TINY, '--checkpoint', cut)),
    ]
    assert all(sentence in line for line in lines), lines


def test_a_model_that_does_not_fit_its_checkpoint_is_not_evaluated(data, trained, tmp_path):
    line = _refused(_run('tools/test.py', TINY, str(trained[0] / 'epoch_2.pth'), '--work-dir',
                         str(tmp_path), *_options(data, 'model.backbone.depth=34')))
    assert 'does not fit the model of this config: keys' in line and 'missing' in line
    assert 'backbone.layer1.2.' in line  # ResNet-34 has a third block in stage 1
    assert not (tmp_path / 'summary.json').exists()


@pytest.mark.parametrize('case,content,expected', [
    ('syntax', "_base_ = ['{tiny}']\nmodel = dict(head=dict(num_classes=2)\n",
     '{path}:2: syntax error in the config: '),
    ('base', "_base_ = ['./no_such_base.py']\n",
     '{path}: the _base_ file {dir}/no_such_base.py does not exist'),
    ('type', "_base_ = ['{tiny}']\nmodel = dict(backbone=dict(type='ResNest'))\n",
     "model.backbone: type='ResNest' is not a registered model in scope resnest_mm (did you "
     "mean 'ResNeSt'?)"),  # case-insensitive first, not 'ResNet'
])
def test_config_mistakes_get_one_sentence(case, content, expected, data, tmp_path):
    path = tmp_path / f'{case}.py'
    path.write_text(content.format(tiny=os.path.join(ROOT, TINY)))
    line = _refused(_run('tools/train.py', str(path), '--work-dir', str(tmp_path / 'w'),
                         *_options(data)))
    assert expected.format(path=path, dir=tmp_path) in line


@pytest.mark.parametrize('item,expected', [
    ('train_dataloader.batch_size=[32', "the value '[32' is malformed (']' is missing)"),
    ('model.head.topk=(1,5', "the value '(1,5' is malformed (')' is missing)"),
    ('randomness', "--cfg-options 'randomness': each item is KEY=VALUE"),
])
def test_malformed_cfg_options_get_one_sentence(item, expected, data, tmp_path):
    line = _refused(_run('tools/train.py', TINY, '--work-dir', str(tmp_path), '--cfg-options',
                         item))
    assert expected in line


def test_a_full_disk_stops_the_run_keeping_the_last_good_checkpoint(data, tmp_path):
    """The work dir on a 2.5 MB tmpfs (its own mount namespace): the first checkpoint
    (1.5 MB) fits, the second does not."""
    if shutil.which('unshare') is None:
        pytest.fail('unshare (util-linux) is needed to mount a small tmpfs')
    work = tmp_path / 'small'
    work.mkdir()
    script = (f'mount -t tmpfs -o size=2500k tmpfs {work} && {sys.executable} tools/train.py '
              f'{TINY} --work-dir {work} ' + ' '.join(_options(data)) +
              f'; status=$?; ls -a {work} > {tmp_path}/listing; '
              f'cat {work}/last_checkpoint > {tmp_path}/pointer; exit $status')
    result = subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=ROOT, capture_output=True,
                            text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))
    line = _refused(result)
    assert line.startswith(f'tools/train.py: error: Iteration 4 (epoch 1): no space left to '
                           f'write {work}/iter_4.pth: it needs ')
    assert 'bytes are free on its disk; the unfinished file was removed. last_checkpoint still ' \
           f'names the last good checkpoint, {work}/iter_2.pth.' in line
    listing = (tmp_path / 'listing').read_text().split()
    assert not [name for name in listing if name.endswith('.part')], listing
    assert 'iter_4.pth' not in listing
    assert (tmp_path / 'pointer').read_text() == f'{work}/iter_2.pth'


@pytest.mark.slow
def test_a_copy_without_its_digest_with_flipped_bytes_is_not_evaluated(data, trained, tmp_path):
    """The CRC-32 of every zip record travels with the file; the .sha256 may not."""
    copy = str(tmp_path / 'copy.pth')
    shutil.copy(trained[0] / 'epoch_2.pth', copy)
    _flip_bytes_inside_a_tensor(copy)
    line = _refused(_run('tools/test.py', TINY, copy, '--work-dir', str(tmp_path / 't'),
                         *_options(data)))
    assert f'{copy} is damaged: the CRC-32 of its record ' in line
    assert not (tmp_path / 't' / 'summary.json').exists()


@pytest.mark.slow
def test_fifos_beside_or_instead_of_checkpoints_end_in_seconds(data, trained, tmp_path):
    """A FIFO named iter_99.pth (with a digest) is skipped by --resume; a FIFO digest beside
    the checkpoint given to tools/test.py is refused; neither blocks."""
    work = tmp_path / 'work'
    shutil.copytree(trained[1], work)
    os.mkfifo(work / 'iter_99.pth')
    (work / 'iter_99.pth.sha256').write_text('0' * 64 + '  iter_99.pth\n')
    # (before: both blocked for ever in open(); the bound is the tools' start-up under load)
    result = _run('tools/train.py', TINY, '--work-dir', str(work), '--resume', *_options(data),
                  timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = result.stdout + result.stderr
    assert f'--resume skipped {work}/iter_99.pth (checkpoint {work}/iter_99.pth is a FIFO ' \
           '(named pipe), not a regular file' in logs
    assert f'Resuming from {work}/iter_5.pth' in logs
    checkpoint = str(tmp_path / 'x.pth')
    shutil.copy(trained[0] / 'epoch_2.pth', checkpoint)
    os.mkfifo(checkpoint + '.sha256')
    line = _refused(_run('tools/test.py', TINY, checkpoint, '--work-dir', str(tmp_path / 't'),
                         *_options(data), timeout=150))
    assert f'{checkpoint}.sha256 cannot be read as a digest (digest file {checkpoint}.sha256 ' \
           'is a FIFO (named pipe)' in line


def _signal_when_open(process, path, signum):
    """Send ``signum`` to ``process`` as soon as it has ``path`` open (the load under way)."""
    target = os.path.realpath(path)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            fds = os.listdir(f'/proc/{process.pid}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f'/proc/{process.pid}/fd/{fd}') == target:
                    process.send_signal(signum)
                    return True
            except OSError:
                pass
    return False


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['test', 'resume'])
def test_a_stop_signal_during_a_load_ends_the_tool_at_once(tool, data, trained, tmp_path):
    """SIGTERM while a (large) checkpoint is read: the usual one sentence and status 143, not a
    flag that waits for the load (and the first iteration) to end."""
    import signal
    checkpoint = torch.load(trained[1] / 'iter_5.pth', weights_only=True)
    checkpoint['meta']['padding'] = torch.zeros(400 << 20, dtype=torch.uint8)
    path = str(tmp_path / 'iter_5.pth')
    torch.save(checkpoint, path)
    del checkpoint
    command = {
        'test': ['tools/test.py', TINY, path, '--work-dir', str(tmp_path / 't')],
        'resume': ['tools/train.py', TINY, '--work-dir', str(tmp_path / 'w'), '--resume', path],
    }[tool]
    env = {k: v for k, v in os.environ.items() if k != 'INTERRUPT'}
    env.update(PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    process = subprocess.Popen([sys.executable, *command, *_options(data)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _signal_when_open(process, path, signal.SIGTERM), 'the checkpoint was never opened'
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-3000:]
    assert 'Traceback' not in stderr, stderr[-3000:]
    assert f'SIGTERM received while reading the checkpoint {path}: stopped before anything ' \
           'was loaded, trained or written' in stderr.strip().splitlines()[-1]
