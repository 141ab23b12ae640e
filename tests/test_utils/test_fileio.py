"""atomic_write: all or nothing, and the usual permissions."""
import os

import pytest

from resnest_mm.utils import atomic_write


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'summary.json'
    atomic_write(str(path), lambda f: f.write(b'old'))

    def half(f):
        f.write(b'ne')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        atomic_write(str(path), half)
    assert path.read_bytes() == b'old' and os.listdir(tmp_path) == ['summary.json']


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / 'a'), lambda f: f.write(b'x'))
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / 'a').st_mode & 0o777) == 0o644


def test_atomic_write_onto_a_folder_names_it_and_leaves_nothing(tmp_path):
    from resnest_mm.utils import UnwritableError, atomic_write
    (tmp_path / 'summary.json').mkdir()
    with pytest.raises(UnwritableError, match=rf'^{tmp_path}/summary.json is a folder, so the '
                                              'file cannot be written there'):
        atomic_write(str(tmp_path / 'summary.json'), lambda f: f.write(b'{}'))
    assert sorted(os.listdir(tmp_path)) == ['summary.json']


def test_stream_sha256_is_the_files_sha256_across_chunks(tmp_path):
    import hashlib

    from resnest_mm.utils.fileio import stream_sha256
    data = os.urandom(1 << 20) * 17 + b'tail'  # over one 16 MiB chunk
    path = tmp_path / 'blob'
    path.write_bytes(data)
    with open(path, 'rb') as f:
        f.read(3)  # what is left of the stream
        assert stream_sha256(f) == hashlib.sha256(data[3:]).hexdigest()
