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
