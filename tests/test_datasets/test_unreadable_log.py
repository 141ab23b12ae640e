"""UnreadableLog reaches every object that records unreadable files through their own
attribute: the data sets (wrapped ones too) and the transforms of their pipelines; a record or
a list that cannot be written is one sentence naming the file, and nothing goes uncounted."""
import pickle

import pytest
from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.registry import DefaultScope

from resnest_mm.datasets import CustomDataset
from resnest_mm.datasets.unreadable_log import UnreadableLog, attach_unreadable_log
from tests.helpers.images import write_image_folder
from tests.helpers.timeouts import ends_within


def _dataset(root):
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        return CustomDataset(data_root=root, pipeline=[
            dict(type='RandomChoice', transforms=[[dict(type='LoadImageRobust')],
                                                  [dict(type='DecodeCenterCrop', crop_size=8)]]),
            dict(type='PackInputs')])


def test_the_log_reaches_wrapped_data_sets_and_nested_transforms(tmp_path):
    root = write_image_folder(str(tmp_path / 'data'), ['a', 'b'], per_class=1, size=16)
    first, second, third = _dataset(root), _dataset(root), _dataset(root)
    log = UnreadableLog(str(tmp_path / 'records'), str(tmp_path / 'list.txt'))
    # data set and its 2 loaders, for each data set
    assert attach_unreadable_log(ConcatDataset([first, second]), log) == 6
    assert attach_unreadable_log(RepeatDataset(third, times=2), log) == 3
    for dataset in (first, second, third):
        loaders = [t for choice in dataset.pipeline.transforms[0].transforms
                   for t in choice.transforms]
        assert dataset.unreadable_log is log and all(t.unreadable_log is log for t in loaders)


def test_records_cross_processes_as_plain_data_and_make_the_list(tmp_path):
    log = pickle.loads(pickle.dumps(UnreadableLog(str(tmp_path / 'rank0'),
                                                  str(tmp_path / 'unreadable_images.txt'))))
    log.record('/data/a\nb.JPEG', 'truncated')
    log.record('/data/c.JPEG', 'empty')
    assert log.recorded() == ['/data/a\\nb.JPEG\ttruncated', '/data/c.JPEG\tempty']
    assert log.write_list('train') == str(tmp_path / 'unreadable_images.txt')
    log.write_list('train')  # once each
    assert (tmp_path / 'unreadable_images.txt').read_text() == (
        'train\t/data/a\\nb.JPEG\ttruncated\ntrain\t/data/c.JPEG\tempty\n')
    assert UnreadableLog(str(tmp_path / 'rank1')).write_list('train') is None  # not rank 0


# --- writes that fail: one sentence naming the file, nothing uncounted -------------------------

def test_a_record_past_the_file_size_limit_is_a_sentence_naming_its_file(tmp_path):
    """Writes fail as on a full disk (``RLIMIT_FSIZE``: every byte past the limit is refused,
    EFBIG). Before: a bare ``OSError`` traceback naming no file."""
    import os
    import resource
    import signal

    from resnest_mm.utils.errors import ExplainedOSError
    folder = tmp_path / 'rank0'
    record = folder / f'{os.getpid()}.tsv'
    log = UnreadableLog(str(folder))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not the signal's kill
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, limits[1]))
        with pytest.raises(ExplainedOSError) as failed:
            log.record('/data/a.JPEG', 'truncated')
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert str(failed.value) == (
        f'could not record the unreadable image /data/a.JPEG in {record} (File too large): the '
        'run stops rather than lose count of it. Free space on that disk (or choose another '
        '--work-dir), then continue with tools/train.py CONFIG --resume')


@pytest.mark.parametrize('kind', ['fifo', 'link'])
def test_a_record_file_swapped_for_a_fifo_or_a_link_is_refused_at_once(tmp_path, kind):
    """Before: the worker blocked for ever opening a FIFO, or appended through a link."""
    import os

    from resnest_mm.utils.errors import ExplainedOSError
    folder = tmp_path / 'rank0'
    folder.mkdir()
    record = folder / f'{os.getpid()}.tsv'
    target = tmp_path / 'elsewhere'
    target.write_text('')
    if kind == 'fifo':
        os.mkfifo(record)
    else:
        os.symlink(target, record)
    with ends_within(10), pytest.raises(ExplainedOSError) as failed:
        UnreadableLog(str(folder)).record('/data/a.JPEG', 'truncated')
    assert ('is a FIFO (named pipe), not a regular file: it is not written' if kind == 'fifo'
            else 'is a symbolic link: it is not written through') in str(failed.value)
    assert target.read_text() == ''


def _unreadable_folder(root):
    for cls in ('a', 'b'):
        (root / cls).mkdir(parents=True)
        (root / cls / 'empty.JPEG').write_bytes(b'')
    return str(root)


@pytest.mark.slow  # a data-loader worker process
def test_a_record_that_fails_in_a_worker_is_the_sentence_alone(tmp_path):
    """Recording from a loader worker into a folder whose parent is a file (ENOTDIR). Before:
    the worker's whole traceback, as an ``OSError``."""
    from torch.utils.data import DataLoader

    from resnest_mm.utils.errors import ExplainedOSError
    from resnest_mm.utils.mmengine_private import shutdown_loader_workers
    (tmp_path / 'file').write_text('')
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        dataset = CustomDataset(data_root=_unreadable_folder(tmp_path / 'data'), test_mode=True,
                                pipeline=[dict(type='LoadImageRobust', on_error='placeholder',
                                               placeholder_size=4), dict(type='PackInputs')])
    attach_unreadable_log(dataset, UnreadableLog(str(tmp_path / 'file' / 'rank0')))
    loader = DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=lambda b: b,
                        persistent_workers=True)
    with pytest.raises(ExplainedOSError) as failed:
        next(iter(loader))
    # the traceback holds the iterator in a cycle: collected by gc, its worker took 5 s to end
    assert shutdown_loader_workers(loader)
    assert str(failed.value).startswith(
        f'could not record the unreadable image {tmp_path}/data/a/empty.JPEG in '
        f'{tmp_path}/file/rank0 (Not a directory): the run stops')


def test_a_list_that_cannot_be_written_when_the_data_set_gives_up_keeps_its_sentence(tmp_path):
    """Every draw unreadable, and the run's list cannot be written (its folder is a file).
    Before: the list's write error replaced the data set's sentence (and in a worker became a
    traceback: ``DiskFullError`` cannot be rebuilt from its text)."""
    from resnest_mm.datasets.folder_datasets import NoReadableSampleError
    (tmp_path / 'file').write_text('')
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        dataset = CustomDataset(data_root=_unreadable_folder(tmp_path / 'data'), max_refetch=3,
                                pipeline=[dict(type='LoadImageRobust'), dict(type='PackInputs')])
    attach_unreadable_log(dataset, UnreadableLog(str(tmp_path / 'records'),
                                                 str(tmp_path / 'file' / 'list.txt')))
    with pytest.raises(NoReadableSampleError) as failed:
        dataset[0]
    assert str(failed.value) == (
        f'CustomDataset: 4 samples drawn in a row from {tmp_path}/data/ could not be read (2 '
        f'samples in the data set); the list {tmp_path}/file/list.txt could not be written '
        f'({tmp_path}/file/list.txt cannot be written: {tmp_path}/file refuses new files (File '
        f'exists); make it writable, or write elsewhere), they are recorded in '
        f'{tmp_path}/records. Check the data with tools/misc/verify_dataset.py')


def test_a_fifo_among_the_records_is_refused_when_they_are_read(tmp_path):
    """Before: reading the records at the epoch's end blocked for ever on it."""
    import os

    from resnest_mm.utils.safe_open import UnsafeFileError
    folder = tmp_path / 'rank0'
    log = UnreadableLog(str(folder))
    log.record('/data/a.JPEG', 'truncated')
    os.mkfifo(folder / '1.tsv')
    with ends_within(10), pytest.raises(UnsafeFileError, match=r'record file .*1\.tsv is a FIFO'):
        log.recorded()
