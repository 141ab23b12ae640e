"""safe_open: only regular files of a bounded size are opened; FIFOs, devices and folders are
refused in one sentence before anything blocks."""
import os

import pytest

from resnest_mm.utils.errors import ExplainedFileNotFoundError
from resnest_mm.utils.safe_open import (
    UnsafeFileError,
    check_regular_file,
    open_regular_file,
    read_regular_file,
)
from tests.helpers.timeouts import ends_within


@pytest.mark.parametrize('read', [check_regular_file, open_regular_file, read_regular_file])
def test_a_fifo_is_refused_without_blocking(read, tmp_path):
    fifo = str(tmp_path / 'iter_99.pth')
    os.mkfifo(fifo)
    with ends_within(5), pytest.raises(UnsafeFileError) as info:
        read(fifo, 1 << 20, 'checkpoint')
    assert str(info.value) == (
        f'checkpoint {fifo} is a FIFO (named pipe), not a regular file: it is not read '
        '(reading it could block or never end); put the real file there')


def test_a_link_to_dev_zero_is_refused_naming_its_target(tmp_path):
    link = str(tmp_path / 'epoch_1.pth')
    os.symlink('/dev/zero', link)
    with ends_within(5), pytest.raises(UnsafeFileError,
                                   match=r'^checkpoint .*epoch_1.pth \(a link to /dev/zero\) '
                                         r'is a character device, not a regular file'):
        read_regular_file(link, 1 << 20, 'checkpoint')


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(UnsafeFileError, match=r'^digest file .* is a folder, not a regular file'):
        read_regular_file(str(tmp_path), 1 << 20, 'digest file')


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / 'big.pth'
    path.write_bytes(b'x' * 2000)
    with pytest.raises(UnsafeFileError, match=r'is 2,000 bytes, more than the 1,000 bytes a '
                                              r'checkpoint may have'):
        read_regular_file(str(path), 1000, 'checkpoint')


def test_a_missing_file_and_a_dangling_link_are_named(tmp_path):
    os.symlink(str(tmp_path / 'gone'), str(tmp_path / 'link'))
    for name in ('nothing', 'link'):
        with pytest.raises(ExplainedFileNotFoundError, match=f'^file .*{name}.* does not exist'):
            check_regular_file(str(tmp_path / name), 10)


def test_a_regular_file_is_read_whole_in_chunks(tmp_path):
    path = tmp_path / 'data.bin'
    payload = os.urandom(100_000)
    path.write_bytes(payload)
    chunks = []
    assert read_regular_file(str(path), 1 << 20, on_chunk=lambda c: chunks.append(len(c)),
                             chunk_bytes=30_000) == payload
    assert chunks == [30_000, 30_000, 30_000, 10_000]
    with open_regular_file(str(path), 1 << 20) as f:  # an ordinary blocking file object
        assert f.read(3) == payload[:3]


def test_an_exception_raised_by_a_signal_handler_mid_open_is_the_one_that_ends_it(tmp_path):
    """``stop_during_load`` raises from its signal handler, which Python runs between any two
    bytecodes, opening included. Whatever the moment, the caller gets that exception: closing
    the bare descriptor after a file object took it closed it twice, so about one open in five
    hit by the signal ended in ``OSError: [Errno 9] Bad file descriptor`` instead (or could
    close a file another thread had just opened under the same number)."""
    import collections
    import signal

    path = str(tmp_path / 'epoch_1.pth')
    with open(path, 'wb') as f:
        f.write(b'x' * 4096)

    class StopError(Exception):
        pass

    armed = [False]

    def stop(signum, frame):
        if armed[0]:
            armed[0] = False
            raise StopError

    previous = signal.signal(signal.SIGALRM, stop)
    outcomes = collections.Counter()
    try:
        for i in range(3000):  # delays of 10..500 us land at every step of the open
            try:
                armed[0] = True
                signal.setitimer(signal.ITIMER_REAL, 1e-5 * (1 + i % 50))
                while True:
                    with open_regular_file(path, 1 << 20, 'checkpoint') as f:
                        f.read(16)
            except StopError:
                outcomes['stop'] += 1
            except OSError as exc:
                outcomes[f'{type(exc).__name__}: {exc}'] += 1
            finally:
                armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert outcomes == {'stop': 3000}


def test_a_folder_swapped_in_while_opening_is_named_a_folder(tmp_path):
    """A thread swaps a file and a folder under the name as fast as it can: every refusal says
    what is there (a folder, a missing file), never the bare OS error of the open."""
    import threading
    import time
    path, file, folder = (str(tmp_path / name) for name in ('epoch_1.pth', 'f', 'd'))
    with open(file, 'wb') as f:
        f.write(b'x')
    os.mkdir(folder)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            for source in (file, folder):
                os.rename(source, path)
                os.rename(path, source)

    swapper = threading.Thread(target=swap)
    swapper.start()
    messages = set()
    try:
        deadline = time.time() + 1
        while time.time() < deadline:
            try:
                with open_regular_file(path, 1 << 20, 'checkpoint'):
                    pass
            except (UnsafeFileError, ExplainedFileNotFoundError) as exc:
                messages.add(str(exc))
    finally:
        stop.set()
        swapper.join()
    assert messages <= {
        f'checkpoint {path} does not exist',
        f'checkpoint {path} is a folder, not a regular file: it is not read (reading it could '
        'block or never end); put the real file there',
        f'checkpoint {path} was replaced while it was being opened: it is not read; try again '
        'once nothing writes it'}, messages
