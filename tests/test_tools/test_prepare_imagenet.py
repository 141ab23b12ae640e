"""tools/dataset_converters/prepare_imagenet.py as a user runs it on hostile archives and label
files: one sentence naming the file, exit status 2, nothing written outside the output."""
import csv
import io
import os
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.slow  # subprocesses or whole runs

TOOL = 'tools/dataset_converters/prepare_imagenet.py'


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _prepare(repo_root, *args):
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], cwd=repo_root,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    return result


def test_a_class_in_the_labels_that_is_a_path_is_refused_before_writing(tmp_path, repo_root):
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'ILSVRC2012_val_00000001.JPEG', b'jpeg')
    with open(tmp_path / 'LOC_val_solution.csv', 'w', newline='') as f:
        csv.writer(f).writerows([['ImageId', 'PredictionString'],
                                 ['ILSVRC2012_val_00000001', '../../escaped 1 2 3 4']])
    out = tmp_path / 'a' / 'b' / 'imagenet'
    result = _prepare(repo_root, out, '--val-tar', tmp_path / 'val.tar', '--val-labels',
                      tmp_path / 'LOC_val_solution.csv')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {tmp_path}/LOC_val_solution.csv, line 2: class '../../escaped' is not a "
        'WordNet id (n followed by 8 digits, e.g. n01440764) and would become a folder name; '
        'refusing it. Is this the official file?')
    assert sorted(os.listdir(tmp_path)) == ['LOC_val_solution.csv', 'val.tar']  # nothing else


def test_a_class_archive_that_is_not_a_tar_gets_a_sentence(tmp_path, repo_root):
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', b'PK\x03\x04 not a tar' * 64)
    result = _prepare(repo_root, tmp_path / 'out', '--train-tar', tmp_path / 'train.tar')
    assert result.returncode == 2  # was a tarfile.ReadError traceback
    assert result.stderr.splitlines()[-1] == (
        f'error: {tmp_path}/train.tar:n01440764.tar is not a tar archive, or is cut short '
        '(invalid header); re-download or re-copy it')


def test_duplicate_names_in_a_class_archive_are_kept_and_listed(tmp_path, repo_root):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode='w') as tar:
        _add(tar, 'a/x.JPEG', b'first')
        _add(tar, 'b/x.JPEG', b'second')
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', inner.getvalue())
    result = _prepare(repo_root, tmp_path / 'out', '--train-tar', tmp_path / 'train.tar')
    assert result.returncode == 1  # a tiny tar: the counts do not match ImageNet's
    assert (f"note: {tmp_path}/train.tar:n01440764.tar: members 'a/x.JPEG' and 'b/x.JPEG' have "
            'the same file name; both kept, the second as x_2.JPEG') in result.stdout
    assert 'train: 2 (MISMATCH: expected 1,281,167)' in result.stdout
    assert sorted(os.listdir(tmp_path / 'out' / 'train' / 'n01440764')) == ['x.JPEG',
                                                                           'x_2.JPEG']


def _class_tar(members):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode='w') as tar:
        for name, data in members:
            _add(tar, name, data)
    return inner.getvalue()


@pytest.mark.slow
def test_a_sparse_member_is_refused_by_name_before_a_byte_is_written(tmp_path, repo_root):
    """A 3 GB GNU sparse member in a 10 KB tar filled the disk, and the error named no path."""
    (tmp_path / 'n01440764_1.JPEG').write_bytes(b'')
    os.truncate(tmp_path / 'n01440764_1.JPEG', 3 << 30)  # holes: no disk used
    subprocess.run(['tar', '--sparse', '-cf', 'n01440764.tar', 'n01440764_1.JPEG'],
                   cwd=tmp_path, check=True)
    os.remove(tmp_path / 'n01440764_1.JPEG')
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        outer.add(tmp_path / 'n01440764.tar', 'n01440764.tar')
    assert os.path.getsize(tmp_path / 'train.tar') < 30_000
    result = _prepare(repo_root, tmp_path / 'out', '--train-tar', tmp_path / 'train.tar')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {tmp_path}/train.tar:n01440764.tar: member 'n01440764_1.JPEG' is a GNU sparse "
        'file of 3,221,225,472 bytes, mostly holes; the official archives hold none. Refusing '
        'this archive.')
    assert not any(files for _, _, files in os.walk(tmp_path / 'out'))  # no file at all


@pytest.mark.slow
def test_label_files_that_break_the_reader_or_repeat_get_a_sentence(tmp_path, repo_root):
    """A 200 KB CSV field was a _csv.Error traceback; a repeated ImageId or class tar was
    resolved silently (the later one won, or was skipped)."""
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'ILSVRC2012_val_00000001.JPEG', b'jpeg')
    rows = {'field': [['ILSVRC2012_val_00000001', 'n01440764 ' + 'x' * 200_000]],
            'repeat': [['ILSVRC2012_val_00000001', 'n01440764 1 2 3 4'],
                       ['ILSVRC2012_val_00000002', 'n01443537 1 2 3 4'],
                       ['ILSVRC2012_val_00000001', 'n01443537 1 2 3 4']]}
    expected = {
        'field': 'line 2: not a readable CSV line (field larger than field limit (131072)); '
                 "is this Kaggle's LOC_val_solution.csv?",
        'repeat': "line 4: ImageId 'ILSVRC2012_val_00000001' again (first on line 2); the "
                  'official file lists each image once. Refusing to choose between its classes'}
    for case, body in rows.items():
        labels = tmp_path / f'{case}.csv'
        with open(labels, 'w', newline='') as f:
            csv.writer(f).writerows([['ImageId', 'PredictionString'], *body])
        result = _prepare(repo_root, tmp_path / 'out', '--val-tar', tmp_path / 'val.tar',
                          '--val-labels', labels)
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == f'error: {labels}, {expected[case]}'
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        for data in (b'first', b'second'):
            _add(outer, 'n01440764.tar', _class_tar([('n01440764_1.JPEG', data)]))
    result = _prepare(repo_root, tmp_path / 'out', '--train-tar', tmp_path / 'train.tar')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {tmp_path}/train.tar: the class archive 'n01440764.tar' appears twice; the "
        'official tar holds each class once. Refusing to choose between them (re-download or '
        're-copy it).')


@pytest.mark.slow
def test_a_member_name_cannot_forge_a_line_of_the_meta_lists(tmp_path, repo_root):
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', _class_tar([
            ('n01440764_1.JPEG', b'a'), ('x.JPEG 0\nn01443537_forged.JPEG', b'b')]))
    result = _prepare(repo_root, tmp_path / 'out', '--train-tar', tmp_path / 'train.tar',
                      '--write-meta')
    assert result.returncode == 1, result.stderr
    assert (tmp_path / 'out' / 'meta' / 'train.txt').read_text() == (
        'n01440764/n01440764_1.JPEG 0\nn01440764/x.JPEG 0_n01443537_forged.JPEG 0\n')
    assert (f"note: {tmp_path}/train.tar:n01440764.tar: member 'x.JPEG 0\\nn01443537_forged."
            "JPEG' has unprintable characters in its name; written as x.JPEG 0_n01443537_forged"
            '.JPEG') in result.stdout.splitlines()
    assert '\n' not in ''.join(os.listdir(tmp_path / 'out' / 'train' / 'n01440764'))


@pytest.mark.slow
def test_a_write_failure_names_the_path_and_leaves_nothing_half_written(tmp_path, repo_root):
    """Writes failed with an OSError naming no file (no space, file too large)."""
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', _class_tar([('n01440764_1.JPEG', b'x' * 100_000)]))
    script = ('import resource, signal, sys, runpy; signal.signal(signal.SIGXFSZ, '
              'signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000)); '
              f'sys.argv = [{TOOL!r}] + sys.argv[1:]; runpy.run_path({TOOL!r}, '
              "run_name='__main__')")
    result = subprocess.run([sys.executable, '-c', script, str(tmp_path / 'out'),
                             '--train-tar', str(tmp_path / 'train.tar')], cwd=repo_root,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
    partial = tmp_path / 'out' / 'train' / 'n01440764.partial'
    assert result.stderr.splitlines()[-1] == (
        f'error: cannot write {partial}/n01440764_1.JPEG: File too large. Free space or fix '
        'the permissions there and re-run: finished classes and images are kept')
    assert os.listdir(partial) == []  # no half-written image
    (tmp_path / 'file').write_text('')
    result = _prepare(repo_root, tmp_path / 'file' / 'out', '--train-tar',
                      tmp_path / 'train.tar')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        f'error: cannot write {tmp_path}/file/out/train: Not a directory.')


@pytest.mark.slow
def test_an_input_that_is_not_a_regular_file_is_refused_at_once(tmp_path, repo_root):
    os.mkfifo(tmp_path / 'LOC_val_solution.csv')  # opened for reading, it waited for ever
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'ILSVRC2012_val_00000001.JPEG', b'jpeg')
    result = _prepare(repo_root, tmp_path / 'out', '--val-tar', tmp_path / 'val.tar',
                      '--val-labels', tmp_path / 'LOC_val_solution.csv')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f'error: the validation labels {tmp_path}/LOC_val_solution.csv is not a regular file (a '
        'FIFO, device or folder); give the downloaded file itself')


@pytest.mark.slow
def test_progress_off_a_terminal_is_a_line_every_few_percent(tmp_path, repo_root):
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        for i in range(1, 201):
            _add(tar, f'ILSVRC2012_val_{i:08d}.JPEG', b'jpeg')
    with open(tmp_path / 'LOC_val_solution.csv', 'w', newline='') as f:
        csv.writer(f).writerows([['ImageId', 'PredictionString']] + [
            [f'ILSVRC2012_val_{i:08d}', 'n01440764 1 2 3 4'] for i in range(1, 201)])
    result = _prepare(repo_root, tmp_path / 'out', '--val-tar', tmp_path / 'val.tar',
                      '--val-labels', tmp_path / 'LOC_val_solution.csv')
    progress = [line for line in result.stdout.splitlines() if line.startswith('validation')]
    assert len(progress) == 20 and '\r' not in result.stdout, result.stdout
    assert progress[-1].startswith('validation images: 100% (200/200), ')


class _Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


MEASURED = ('import resource, runpy, sys\n'
            f'sys.argv = [{TOOL!r}] + sys.argv[1:]\n'
            'try:\n'
            f'    runpy.run_path({TOOL!r}, run_name="__main__")\n'
            'except SystemExit as exc:\n'
            '    code = exc.code\n'
            'print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n'
            'sys.exit(code)\n')


@pytest.mark.slow
def test_a_gzip_bomb_devkit_is_refused_in_little_memory(tmp_path, repo_root):
    """A 1 MB devkit.tar.gz whose meta.mat inflates to 1 GB peaked at gigabytes."""
    devkit = tmp_path / 'ILSVRC2012_devkit_t12.tar.gz'
    with tarfile.open(devkit, 'w:gz', compresslevel=9) as tar:
        info = tarfile.TarInfo('ILSVRC2012_devkit_t12/data/meta.mat')
        info.size = 1 << 30
        tar.addfile(info, io.BufferedReader(_Zeros(info.size), 1 << 20))
    assert os.path.getsize(devkit) < 1_100_000
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'ILSVRC2012_val_00000001.JPEG', b'jpeg')
    result = subprocess.run(
        [sys.executable, '-c', MEASURED, str(tmp_path / 'out'), '--val-tar',
         str(tmp_path / 'val.tar'), '--val-labels', str(devkit)], cwd=repo_root,
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {devkit}: member 'ILSVRC2012_devkit_t12/data/meta.mat' declares 1,073,741,824 "
        'bytes, more than any such file of ImageNet (67,108,864). Refusing this archive.')
    peak_mb = int(result.stdout.rsplit('PEAK_RSS_KB', 1)[1].split()[0]) / 1024
    baseline = subprocess.run(  # the imports alone (torch, mmpretrain) cost hundreds of MB
        [sys.executable, '-c', MEASURED, '--help'], cwd=repo_root, capture_output=True,
        text=True, timeout=120, env=dict(os.environ, PYTHONPATH=repo_root))
    baseline_mb = int(baseline.stdout.rsplit('PEAK_RSS_KB', 1)[1].split()[0]) / 1024
    print(f'peak RSS: {peak_mb:.0f} MB, of which the imports {baseline_mb:.0f} MB')
    assert peak_mb - baseline_mb < 100
