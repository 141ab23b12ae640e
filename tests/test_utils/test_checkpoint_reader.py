"""The checkpoint reader on the hostile files of issue 21: each is refused in one sentence
within seconds (hangs are bounded by an alarm), genuine checkpoints of torch, mmengine and
resnest_mm load as data, and a stop signal ends a load at once."""
import codecs
import os
import signal
import threading
import time
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from resnest_mm.utils.checkpoint_io import (
    CheckpointError,
    CheckpointLoadInterruptedError,
    file_sha256,
    load_checkpoint_file,
    verify,
)
from tests.helpers.forged_checkpoints import (
    Forged,
    colliding_dict_pickle,
    save_forged,
    torch_zip,
)
from tests.helpers.timeouts import ends_within


def _refusal(path, seconds=10):
    with ends_within(seconds), pytest.raises(CheckpointError) as info:
        load_checkpoint_file(str(path))
    return str(info.value)


def _checkpoint(path, **extra):
    state = OrderedDict(weight=torch.arange(4096, dtype=torch.float32))
    torch.save(dict(state_dict=state, meta=dict(epoch=1), **extra), path)
    return str(path)


# --- files that are not regular files, and digests that are not files -------------------------

def test_a_fifo_checkpoint_is_refused_at_once(tmp_path):
    fifo = tmp_path / 'iter_99.pth'
    os.mkfifo(fifo)
    (tmp_path / 'iter_99.pth.sha256').write_text('0' * 64 + '  iter_99.pth\n')
    message = _refusal(fifo, seconds=5)
    assert message.startswith(f'checkpoint {fifo} is a FIFO (named pipe), not a regular file')
    with ends_within(5), pytest.raises(CheckpointError, match='is a FIFO'):
        verify(str(fifo))  # what --resume checks first, before choosing it


def test_a_link_to_dev_zero_is_refused_naming_its_target(tmp_path):
    link = tmp_path / 'epoch_1.pth'
    os.symlink('/dev/zero', link)
    assert '(a link to /dev/zero) is a character device' in _refusal(link, seconds=5)
    with ends_within(5), pytest.raises(CheckpointError, match='character device'):
        file_sha256(str(link))


def test_a_digest_that_is_a_fifo_is_refused_at_once(tmp_path):
    path = _checkpoint(tmp_path / 'x.pth')
    os.mkfifo(path + '.sha256')
    message = _refusal(path, seconds=5)
    assert message.startswith(f'{path}.sha256 cannot be read as a digest (digest file ')
    assert 'is a FIFO (named pipe)' in message


def test_a_checkpoint_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    path = _checkpoint(tmp_path / 'x.pth')
    monkeypatch.setenv('RESNEST_MM_MAX_CHECKPOINT_GB', str(1000 / (1 << 30)))
    assert 'more than the 1,000 bytes a checkpoint may have' in _refusal(path)


# --- integrity travels with the file --------------------------------------------------------

def test_flipped_bytes_without_a_digest_are_refused_by_the_crc(tmp_path):
    path = _checkpoint(tmp_path / 'copy.pth')  # a copy: no .sha256 beside it
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo('copy/data/0')
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    with open(path, 'r+b') as f:
        f.seek(start + info.file_size // 2)
        f.write(bytes(8 * [0xFF]))
    torch.load(path, weights_only=True)  # torch itself reads it, with other numbers
    assert _refusal(path) == (
        f'{path} is damaged: the CRC-32 of its record copy/data/0 differs from the one its zip '
        'directory recorded when it was written. It is not used; resume from an earlier '
        'checkpoint (tools/train.py CONFIG --resume picks the newest one that verifies) or '
        'restore the file from a copy.')


# --- pickles built only from torch's weights-only allow-list --------------------------------

def test_a_dict_of_colliding_keys_is_refused_in_seconds(tmp_path):
    path = torch_zip(str(tmp_path / 'c.pth'), colliding_dict_pickle(100_000))
    assert 'is refused: it holds a dict key or set member that is an integer beyond 2**61' \
        in _refusal(path, seconds=20)


def test_punycode_is_refused_in_seconds(tmp_path):
    path = str(tmp_path / 'p.pth')
    save_forged(dict(meta=Forged(codecs.encode, '\u0101' * 30_000, 'punycode')), path)
    assert "is refused: it calls _codecs.encode with the encoding 'punycode'" in \
        _refusal(path, seconds=10)


def test_a_huge_bytearray_is_refused_before_it_is_built(tmp_path):
    path = str(tmp_path / 'b.pth')
    save_forged(dict(state_dict={}, meta=Forged(bytearray, 3 * 10 ** 9)), path)
    assert 'is refused: it holds builtins.bytearray, which is not plain data' in _refusal(path)


def test_a_zip_record_inflating_a_thousandfold_is_refused_before_it_is_read(tmp_path):
    zeros = bytes(1 << 20)
    path = torch_zip(str(tmp_path / 'z.pth'), b'\x80\x02}q\x00.',
                     {'0': (zeros for _ in range(64))}, compress=zipfile.ZIP_DEFLATED)
    assert 'is refused: its zip record archive/data/0 would inflate from ' in _refusal(path)


def test_a_tensor_asking_for_more_than_its_record_is_refused(tmp_path):
    path = str(tmp_path / 't.pth')
    torch.save(dict(w=torch.zeros(4)), path)
    with zipfile.ZipFile(path) as archive:
        names = {i.filename: archive.read(i) for i in archive.infolist()}
    # the storage's element count in its persistent id: 4 -> 2**28 (a 1 GiB storage)
    pkl = names['t/data.pkl'].replace(b'cpuq\x06K\x04t', b'cpuq\x06J\x00\x00\x00\x10t')
    assert pkl != names['t/data.pkl']
    torch_zip(path, pkl, {'0': [names['t/data/0']]})
    assert 'which its record data/0 does not hold' in _refusal(path)


def test_a_history_buffer_cannot_change_the_class_wide_statistics(tmp_path):
    HistoryBuffer()  # the class's default statistics exist
    before = dict(HistoryBuffer._statistics_methods)
    buffer = HistoryBuffer.__new__(HistoryBuffer)
    state = dict(max_length=10, _log_history=np.array([1.0, 3.0]),
                 _count_history=np.array([1, 1]), statistics_methods=dict(mean=1))
    path = str(tmp_path / 'h.pth')
    save_forged(dict(message_hub=dict(log_scalars=dict(loss=buffer))), path,
                states={id(buffer): state})
    assert 'a HistoryBuffer whose statistics are not method names' in _refusal(path)
    assert HistoryBuffer._statistics_methods == before
    assert HistoryBuffer([2.0, 4.0], [1, 1]).statistics('mean') == 3.0


# --- what loads ----------------------------------------------------------------------------

def test_mmengine_history_buffers_and_numpy_values_load_as_data(tmp_path):
    buffer = HistoryBuffer([0.5, 1.5], [1, 1], max_length=100)
    path = str(tmp_path / 'm.pth')
    torch.save(dict(message_hub=dict(log_scalars=OrderedDict(loss=buffer),
                                     runtime_info=dict(eta=np.float64(2.5), flag=np.bool_(1))),
                    meta=dict(array=np.arange(6, dtype=np.int32).reshape(2, 3)),
                    state_dict=OrderedDict(w=torch.ones(2))), path)
    before = dict(HistoryBuffer._statistics_methods)
    checkpoint = load_checkpoint_file(path)
    loaded = checkpoint['message_hub']['log_scalars']['loss']
    assert type(loaded) is HistoryBuffer and loaded.max_length == 100
    assert loaded.mean() == 1.0 and loaded.statistics('current') == 1.5
    assert HistoryBuffer._statistics_methods == before
    assert checkpoint['message_hub']['runtime_info']['eta'] == np.float64(2.5)
    np.testing.assert_array_equal(checkpoint['meta']['array'], np.arange(6).reshape(2, 3))


def test_a_legacy_format_checkpoint_loads(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    weights = OrderedDict(w=torch.randn(3, 3), b=torch.arange(3))
    torch.save(dict(state_dict=weights), path, _use_new_zipfile_serialization=False)
    loaded = load_checkpoint_file(path)['state_dict']
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)


def test_a_stop_signal_during_a_load_ends_it_with_the_signal_status(tmp_path):
    path = str(tmp_path / 'big.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(64 << 20, dtype=torch.uint8))), path)
    pid, target = os.getpid(), os.path.realpath(path)

    def _signal_once_it_is_open():
        deadline = time.time() + 30
        while time.time() < deadline:
            for fd in os.listdir(f'/proc/{pid}/fd'):
                try:
                    if os.readlink(f'/proc/{pid}/fd/{fd}') == target:
                        os.kill(pid, signal.SIGTERM)
                        return
                except OSError:
                    pass

    previous = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=_signal_once_it_is_open)
    thread.start()
    with ends_within(30), pytest.raises(CheckpointLoadInterruptedError) as info:
        for _ in range(20):  # the signal lands during one of these loads
            load_checkpoint_file(path, limits=None)
    thread.join()
    assert info.value.exit_code == 143
    assert str(info.value) == (f'SIGTERM received while reading the checkpoint {path}: stopped '
                               'before anything was loaded, trained or written; run the same '
                               'command again to continue')
    assert signal.getsignal(signal.SIGTERM) is previous  # the handlers are put back


def test_the_pickle_instructions_and_nesting_are_bounded(tmp_path):
    from resnest_mm.utils.checkpoint_io import CheckpointLimits
    path = _checkpoint(tmp_path / 'x.pth', history=list(range(2000)))
    with pytest.raises(CheckpointError, match=r'is refused: its pickle has more than 1,000 '
                                              r'instructions\. No checkpoint needs that'):
        load_checkpoint_file(path, limits=CheckpointLimits(pickle_ops=1000))
    nested: list = []
    for _ in range(150):
        nested = [nested]
    path = _checkpoint(tmp_path / 'n.pth', nested=nested)
    assert 'is refused: its containers nest more than 100 deep' in _refusal(path)


def test_a_torchscript_archive_is_refused_even_when_trusted(tmp_path):
    path = str(tmp_path / 'scripted.pth')
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    message = 'is refused: it is a TorchScript archive (code), not a checkpoint of data'
    assert message in _refusal(path)
    with pytest.raises(CheckpointError, match='not even with --unsafe-load'):
        load_checkpoint_file(path, unsafe=True)
