"""prepare_imagenet on tiny tars with the structure of the official ones."""
import csv
import io
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from scipy.io import savemat

from resnest_mm.datasets.imagenet_prep import (
    UnsafeArchiveError,
    count_report,
    extract_train,
    extract_val,
    read_val_labels,
    write_meta,
)
from tests.helpers.images import write_image_folder

WNIDS = ['n01440764', 'n01443537', 'n01484850']
VAL = {1: 'n01443537', 2: 'n01440764', 3: 'n01484850', 4: 'n01440764'}  # image -> class


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    root = tmp_path_factory.mktemp('official')
    images = write_image_folder(str(root / 'images'), ['x'], per_class=1, size=24)
    jpeg = open(os.path.join(images, 'x', '000.JPEG'), 'rb').read()
    with tarfile.open(root / 'ILSVRC2012_img_train.tar', 'w') as outer:
        for wnid in WNIDS:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode='w') as inner:
                for i in range(2):
                    _add(inner, f'{wnid}_{i}.JPEG', jpeg)
            _add(outer, f'{wnid}.tar', buf.getvalue())
    with tarfile.open(root / 'ILSVRC2012_img_val.tar', 'w') as tar:
        for i in VAL:
            _add(tar, f'ILSVRC2012_val_{i:08d}.JPEG', jpeg)
    # devkit: ILSVRC2012_ID 1..3 are the leaves; a parent synset (id 4) has children
    synsets = np.zeros((4, ), dtype=[('ILSVRC2012_ID', 'O'), ('WNID', 'O'),
                                     ('num_children', 'O')])
    for i, wnid in enumerate(WNIDS + ['n00000001']):
        synsets[i] = (i + 1, wnid, 0 if i < 3 else 3)
    meta = io.BytesIO()
    savemat(meta, {'synsets': synsets})
    truth = ''.join(f'{WNIDS.index(w) + 1}\n' for w in VAL.values()).encode()
    with tarfile.open(root / 'ILSVRC2012_devkit_t12.tar.gz', 'w:gz') as tar:
        _add(tar, 'ILSVRC2012_devkit_t12/data/meta.mat', meta.getvalue())
        _add(tar, 'ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt', truth)
    with open(root / 'LOC_val_solution.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['ImageId', 'PredictionString'])
        for i, wnid in VAL.items():
            writer.writerow([f'ILSVRC2012_val_{i:08d}', f'{wnid} 1 2 3 4'])
    return root


def test_devkit_and_kaggle_labels_agree(official):
    devkit = read_val_labels(str(official / 'ILSVRC2012_devkit_t12.tar.gz'))
    kaggle = read_val_labels(str(official / 'LOC_val_solution.csv'))
    assert devkit == kaggle == {f'ILSVRC2012_val_{i:08d}.JPEG': w for i, w in VAL.items()}


def test_layout_counts_meta_and_resume(official, tmp_path):
    out = str(tmp_path / 'imagenet')
    train = extract_train(str(official / 'ILSVRC2012_img_train.tar'), out)
    labels = read_val_labels(str(official / 'ILSVRC2012_devkit_t12.tar.gz'))
    val = extract_val(str(official / 'ILSVRC2012_img_val.tar'), labels, out)
    assert train == {w: 2 for w in WNIDS}
    assert val == {'n01440764': 2, 'n01443537': 1, 'n01484850': 1}
    assert sorted(os.listdir(os.path.join(out, 'val', 'n01440764'))) == [
        'ILSVRC2012_val_00000002.JPEG', 'ILSVRC2012_val_00000004.JPEG']
    write_meta(out)
    lines = open(os.path.join(out, 'meta', 'val.txt')).read().splitlines()
    assert lines[0] == 'n01440764/ILSVRC2012_val_00000002.JPEG 0' and len(lines) == 4
    report = count_report(train, val)
    assert report[0] == 'train: 6 (MISMATCH: expected 1,281,167)'
    # an interrupted class (left as .partial) and a finished one: the re-run redoes only the first
    os.rename(os.path.join(out, 'train', WNIDS[0]), os.path.join(out, 'train', WNIDS[0]
                                                                 + '.partial'))
    marker = os.path.join(out, 'train', WNIDS[1], 'kept')
    open(marker, 'w').close()
    assert extract_train(str(official / 'ILSVRC2012_img_train.tar'), out)[WNIDS[0]] == 2
    assert os.path.exists(marker) and not os.path.exists(
        os.path.join(out, 'train', WNIDS[0] + '.partial'))


@pytest.mark.parametrize('evil', ['../escape.JPEG', '/etc/escape.JPEG', 'link'])
def test_refuses_members_that_escape_or_link(evil, tmp_path):
    path = tmp_path / 'val.tar'
    with tarfile.open(path, 'w') as tar:
        if evil == 'link':
            info = tarfile.TarInfo('ILSVRC2012_val_00000001.JPEG')
            info.type = tarfile.SYMTYPE
            info.linkname = '/etc/passwd'
            tar.addfile(info)
        else:
            _add(tar, evil, b'x')
    with pytest.raises(UnsafeArchiveError, match='refusing|Refusing'):
        extract_val(str(path), {}, str(tmp_path / 'out'))
    assert not (tmp_path / 'escape.JPEG').exists() and not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_cli(official, tmp_path, repo_root):
    out = tmp_path / 'data'
    cmd = [sys.executable, 'tools/dataset_converters/prepare_imagenet.py', str(out),
           '--train-tar', str(official / 'ILSVRC2012_img_train.tar'),
           '--val-tar', str(official / 'ILSVRC2012_img_val.tar'),
           '--val-labels', str(official / 'LOC_val_solution.csv'), '--write-meta']
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 1  # tiny tars: the counts do not match ImageNet's
    assert 'val: 4 (MISMATCH: expected 50,000)' in result.stdout
    assert (out / 'meta' / 'train.txt').exists()
    assert sorted(os.listdir(out / 'train')) == WNIDS


def _csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['ImageId', 'PredictionString'])
        writer.writerows(rows)
    return str(path)


@pytest.mark.parametrize('evil', ['../../x', '/tmp/abs', 'n0144076', 'n01440764/..', '.'])
def test_a_class_that_is_not_a_wordnet_id_is_refused_by_name(evil, tmp_path):
    """It became a folder: ../../x and absolute paths wrote outside the output."""
    labels = _csv(tmp_path / 'LOC_val_solution.csv',
                  [['ILSVRC2012_val_00000001', 'n01440764 1 2 3 4'],
                   ['ILSVRC2012_val_00000002', f'{evil} 1 2 3 4']])
    message = (f"class {evil!r} is not a WordNet id \\(n followed by 8 digits, e.g. n01440764\\) "
               "and would become a folder name; refusing it")
    with pytest.raises(ValueError, match=f'LOC_val_solution.csv, line 3: {message}'):
        read_val_labels(labels)
    with pytest.raises(ValueError, match='is not a WordNet id'):  # a caller's own labels too
        _extract_one_with_label(tmp_path, '../x')
    assert sorted(os.listdir(tmp_path)) == ['LOC_val_solution.csv', 'val.tar']


def _extract_one_with_label(tmp_path, wnid):
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'x.JPEG', b'data')
    return extract_val(str(tmp_path / 'val.tar'), {'x.JPEG': wnid}, str(tmp_path / 'out'))


def test_meta_mat_wnids_and_ground_truth_lines_are_checked(tmp_path):
    from resnest_mm.datasets.imagenet_prep import BadLabelsError
    synsets = np.zeros((2, ), dtype=[('ILSVRC2012_ID', 'O'), ('WNID', 'O'),
                                     ('num_children', 'O')])
    synsets[0] = (1, 'n01440764', 0)
    synsets[1] = (2, '../../etc', 0)
    savemat(tmp_path / 'meta.mat', {'synsets': synsets})
    (tmp_path / 'ILSVRC2012_validation_ground_truth.txt').write_text('1\n')
    with pytest.raises(BadLabelsError, match=r"meta.mat, synset ILSVRC2012_ID 2: class "
                                             r"'../../etc' is not a WordNet id"):
        read_val_labels(str(tmp_path))
    synsets[1] = (2, 'n01443537', 0)
    savemat(tmp_path / 'meta.mat', {'synsets': synsets})
    (tmp_path / 'ILSVRC2012_validation_ground_truth.txt').write_text('1\n7\n')
    with pytest.raises(BadLabelsError, match=r'ground_truth.txt, line 2: class number 7 is not '
                                             r'one of the 2 leaf classes of meta.mat'):
        read_val_labels(str(tmp_path))


@pytest.mark.parametrize('damage', ['not a tar', 'cut short'])
def test_a_class_archive_that_is_not_a_tar_is_named(damage, tmp_path):
    from resnest_mm.datasets.imagenet_prep import BadArchiveError
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode='w') as tar:
        _add(tar, 'n01440764_1.JPEG', b'x' * 5000)
    data = b'PK\x03\x04 a zip, say' * 64 if damage == 'not a tar' else inner.getvalue()[:2000]
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', data)
    with pytest.raises(BadArchiveError, match=rf'^{tmp_path}/train.tar:n01440764.tar is not a '
                                              r'tar archive, or is cut short \(.*\); '
                                              r're-download or re-copy it$'):
        extract_train(str(tmp_path / 'train.tar'), str(tmp_path / 'out'))
    with pytest.raises(BadArchiveError, match=r'notes.txt is not a tar archive'):
        (tmp_path / 'notes.txt').write_text('hello')
        extract_train(str(tmp_path / 'notes.txt'), str(tmp_path / 'out'))


def test_members_with_one_file_name_are_both_kept_and_reported(tmp_path):
    """a/x.JPEG and b/x.JPEG in one class tar silently became one file."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode='w') as tar:
        for folder, data in (('a', b'first'), ('b', b'second'), ('c', b'third')):
            _add(tar, f'{folder}/x.JPEG', data)
    with tarfile.open(tmp_path / 'train.tar', 'w') as outer:
        _add(outer, 'n01440764.tar', inner.getvalue())
    notes = []
    counts = extract_train(str(tmp_path / 'train.tar'), str(tmp_path / 'out'), notes=notes)
    folder = tmp_path / 'out' / 'train' / 'n01440764'
    assert counts == {'n01440764': 3}
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == {
        'x.JPEG': b'first', 'x_2.JPEG': b'second', 'x_3.JPEG': b'third'}
    assert notes == [f"{tmp_path}/train.tar:n01440764.tar: members 'a/x.JPEG' and 'b/x.JPEG' "
                     'have the same file name; both kept, the second as x_2.JPEG',
                     f"{tmp_path}/train.tar:n01440764.tar: members 'a/x.JPEG' and 'c/x.JPEG' "
                     'have the same file name; both kept, the second as x_3.JPEG']
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'a/ILSVRC2012_val_00000001.JPEG', b'first')
        _add(tar, 'b/ILSVRC2012_val_00000001.JPEG', b'second')
    notes = []
    val = extract_val(str(tmp_path / 'val.tar'), {'ILSVRC2012_val_00000001.JPEG': 'n01440764'},
                      str(tmp_path / 'out'), notes=notes)
    assert val == {'n01440764': 2} and len(notes) == 1
    assert sorted(os.listdir(tmp_path / 'out' / 'val' / 'n01440764')) == [
        'ILSVRC2012_val_00000001.JPEG', 'ILSVRC2012_val_00000001_2.JPEG']


def test_the_devkit_is_read_through_a_decompression_bound(tmp_path, monkeypatch):
    """Members each under the size limit still inflate without end: the stream is bounded."""
    from resnest_mm.datasets import imagenet_prep
    from resnest_mm.datasets.imagenet_prep import BadArchiveError
    monkeypatch.setattr(imagenet_prep, 'MAX_DEVKIT_BYTES', 1 << 20)
    devkit = tmp_path / 'ILSVRC2012_devkit_t12.tar.gz'
    with tarfile.open(devkit, 'w:gz') as tar:
        for i in range(4):
            _add(tar, f'ILSVRC2012_devkit_t12/data/filler{i}.bin', bytes(400_000))
    with pytest.raises(BadArchiveError, match=f'^{devkit} inflates to more than 1,048,576 bytes'):
        read_val_labels(str(devkit))


def test_oversize_and_sparse_members_are_refused(tmp_path, monkeypatch):
    from resnest_mm.datasets import imagenet_prep
    monkeypatch.setitem(imagenet_prep.MAX_MEMBER_BYTES, 'image', 1000)
    with tarfile.open(tmp_path / 'val.tar', 'w') as tar:
        _add(tar, 'ILSVRC2012_val_00000001.JPEG', bytes(1001))
    with pytest.raises(UnsafeArchiveError, match=r"member 'ILSVRC2012_val_00000001.JPEG' "
                                                 r'declares 1,001 bytes, more than any such file'):
        extract_val(str(tmp_path / 'val.tar'), {'ILSVRC2012_val_00000001.JPEG': 'n01440764'},
                    str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()
