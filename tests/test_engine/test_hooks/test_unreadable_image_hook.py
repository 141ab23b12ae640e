"""A folder mixing ImageNet's oddities and unreadable files trains and validates; the unreadable
ones are listed by path; too many stop the run with a sentence."""
import os
import shutil
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook

from resnest_mm.engine.runner import ResNeStRunner
from resnest_mm.registry import bare_type
from resnest_mm.utils.errors import ExplainedError, ExplainedOSError
from tests.helpers.images import write_image_folder
from tests.helpers.odd_images import write_odd_images, write_unreadable_images
from tests.helpers.timeouts import ends_within

CONFIG = 'configs/resnest50_1xb32_digits.py'


@pytest.fixture(scope='module')
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp('messy')
    for split in ('train', 'val'):
        write_image_folder(str(root / split), ['a', 'b'], per_class=3, size=40)
        write_odd_images(str(root / split / 'a'))
        write_unreadable_images(str(root / split / 'b'))
    return root


def _runner(root, work_dir, max_fraction, workers=2, tiny=False):
    cfg = Config.fromfile(CONFIG)
    if tiny:  # the tiny ResNet of tests/helpers/configs/tiny_resnet_digits.py
        cfg.model.backbone = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8)
        cfg.model.head.in_channels = 64
    # the ImageNet configs' loaders and augmentations, at the demo's size
    imagenet = Config.fromfile('configs/_base_/datasets/imagenet_bs128.py')
    cfg.train_dataloader.dataset.pipeline = imagenet.train_pipeline
    cfg.train_dataloader.dataset.pipeline[0].scale = 32
    cfg.data_preprocessor.type = imagenet.data_preprocessor.type  # adds the lighting noise
    cfg.val_dataloader.dataset.pipeline = imagenet.test_pipeline
    cfg.val_dataloader.dataset.pipeline[0].update(crop_size=32, crop_padding=4)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(root)
        loader.num_workers = workers
        loader.persistent_workers = workers > 0
        loader.batch_size = 4
    # every file is read in the one epoch (the list of unreadable ones is checked); 15 images in
    # batches of 4 leave no batch of one sample
    cfg.train_dataloader.drop_last = False
    # the hook may be a default hook or a custom one
    for hook in [*cfg.get('custom_hooks', []), *cfg.get('default_hooks', {}).values()]:
        if hook and bare_type(hook.get('type')) == 'UnreadableImageHook':
            hook['max_fraction'] = max_fraction
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(work_dir)
    # mmengine names its logger after the start second: a unique name gives this run its own
    # log file even when another Runner started in the same second
    cfg.experiment_name = f'unreadable-{os.path.basename(str(work_dir))}'
    cfg.default_hooks.logger.interval = 1
    return ResNeStRunner.from_cfg(cfg)


@pytest.mark.parametrize('kind', ['UnreadableImageHook', 'resnest_mm.UnreadableImageHook'])
@pytest.mark.parametrize('where', ['default_hooks', 'custom_hooks', 'both'])
def test_an_overridden_safety_hook_replaces_the_default_one(kind, where, tmp_path):
    """A config's UnreadableImageHook, bare or scoped, under the default key or in
    custom_hooks, is the run's only one: two would each apply their own max_fraction."""
    from tests.helpers.toy_runner import make_runner
    ours = dict(type=kind, max_fraction=0.5)
    default_hooks = dict(unreadable_images=dict(type='resnest_mm.UnreadableImageHook',
                                                max_fraction=0.001))  # as the base config
    custom_hooks = []
    if where == 'default_hooks':
        default_hooks['unreadable_images'] = ours
    else:
        custom_hooks.append(ours)
    if where == 'both':
        default_hooks['unreadable_images'] = dict(ours)
    runner = make_runner(str(tmp_path), default_hooks=default_hooks, custom_hooks=custom_hooks)
    hooks = [h for h in runner.hooks if type(h).__name__ == 'UnreadableImageHook']
    assert [h.max_fraction for h in hooks] == [0.5]


@pytest.mark.slow  # a real ResNeSt-50 Runner run
def test_mixed_folder_trains_validates_and_lists_unreadable_files(messy, tmp_path):
    runner = _runner(messy, tmp_path, max_fraction=0.5)
    runner.train()
    assert runner.message_hub.get_scalar('val/accuracy/top1') is not None
    with open(tmp_path / 'unreadable_images.txt') as f:
        lines = f.read().splitlines()
    train = sorted(os.path.basename(line.split('\t')[1]) for line in lines
                   if line.startswith('train'))
    val = sorted(os.path.basename(line.split('\t')[1]) for line in lines
                 if line.startswith('val'))
    assert train == val == ['empty.JPEG', 'text.JPEG', 'truncated.JPEG']
    assert any('truncated JPEG' in line for line in lines)
    log = open(next(tmp_path.glob('*/*.log'))).read()
    assert 'unreadable image(s) in this train epoch' in log and 'truncated.JPEG' in log
    # the workers learnt where to record from the transforms they were given, not from the
    # environment
    assert not [name for name in os.environ if name.startswith('RESNEST_MM_UNREADABLE')]
    for loader in (runner.train_dataloader, runner.val_dataloader):
        first = loader.dataset.pipeline.transforms[0]
        assert first.unreadable_log.folder == str(tmp_path / '.unreadable_images' / 'rank0')
        assert loader.dataset.unreadable_log is first.unreadable_log


@pytest.mark.slow  # a whole Runner run
def test_too_many_unreadable_files_stop_the_run(messy, tmp_path, one_thread):
    """The hook's verdict does not depend on the network: the tiny ResNet, on one thread,
    trains the epoch (ResNeSt-50 took 20 s of a 2-core machine here)."""
    runner = _runner(messy, tmp_path, max_fraction=0.01, workers=0, tiny=True)
    with pytest.raises(RuntimeError, match=r'could not be read, more than '
                                           r'UnreadableImageHook.max_fraction=0.01'):
        runner.train()


@pytest.mark.slow
def test_verify_dataset_lists_unreadable_files(messy, tmp_path, repo_root):
    import subprocess
    import sys
    shutil.copytree(messy / 'val', tmp_path / 'val')
    result = subprocess.run([sys.executable, 'tools/misc/verify_dataset.py', str(tmp_path)],
                            cwd=repo_root, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 1, result.stderr
    assert '3 of 15 files could not be read' in result.stdout
    for name in ('empty.JPEG', 'text.JPEG', 'truncated.JPEG'):
        assert name in result.stdout
    clean = tmp_path / 'clean'
    write_image_folder(str(clean / 'val'), ['a'], per_class=2)
    result = subprocess.run([sys.executable, 'tools/misc/verify_dataset.py', str(clean)],
                            cwd=repo_root, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0 and 'all 2 files read' in result.stdout


TRAIN_AND_MEASURE = '''
import resource, sys
from resnest_mm.frontends.cli import train
train(sys.argv[1:])
usage = resource.getrusage
print('PEAK_RSS_KB', max(usage(resource.RUSAGE_SELF).ru_maxrss,
                         usage(resource.RUSAGE_CHILDREN).ru_maxrss))
'''


@pytest.mark.slow
def test_decompression_bombs_are_listed_and_training_completes_in_little_memory(tmp_path,
                                                                              repo_root):
    """The issue's acceptance: two ~700-byte JPEGs declaring 40000 x 40000 and 30000 x 30000
    in a class folder; the real Runner through resnest_mm.frontends.cli.train (data-loader workers
    included) completes, lists both, and peaks under 3 GB (a 30000 x 30000 decode alone is
    2.7 GB, the 40000 x 40000 one killed the worker with cv2.error)."""
    import subprocess
    import sys

    from tests.helpers.hostile_images import jpeg_declaring
    data = tmp_path / 'data'
    for split, seed in (('train', 0), ('val', 1)):
        write_image_folder(str(data / split), ['a', 'b'], per_class=3, size=32, seed=seed)
        (data / split / 'a' / 'bomb_40000.JPEG').write_bytes(jpeg_declaring(40000, 40000))
        (data / split / 'a' / 'bomb_30000.JPEG').write_bytes(jpeg_declaring(30000, 30000))
    options = ['train_cfg.max_epochs=1', 'default_hooks.unreadable_images.max_fraction=0.5']
    for loader, workers in (('train_dataloader', 2), ('val_dataloader', 0)):
        options += [f'{loader}.dataset.data_root={data}', f'{loader}.batch_size=4',
                    f'{loader}.num_workers={workers}', f'{loader}.persistent_workers=False']
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, '-c', TRAIN_AND_MEASURE, CONFIG, '--work-dir', str(work_dir),
         '--cfg-options', *options], cwd=repo_root, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-3000:]
    listed = (work_dir / 'unreadable_images.txt').read_text().splitlines()
    for mode in ('train', 'val'):  # skipped in training, scored as the stand-in in evaluation
        names = sorted(os.path.basename(line.split('\t')[1]) for line in listed
                       if line.startswith(mode))
        assert names == ['bomb_30000.JPEG', 'bomb_40000.JPEG'], listed
    assert all('more than max_pixels=89,478,485' in line for line in listed), listed
    peak_kb = int(result.stdout.rsplit('PEAK_RSS_KB', 1)[1].split()[0])
    print(f'peak RSS of the training run: {peak_kb / 1024:.0f} MB')
    assert peak_kb < 3 * 1024 * 1024, f'peak RSS {peak_kb / 1024:.0f} MB'


@pytest.mark.slow
def test_a_folder_of_unreadable_files_ends_in_a_sentence_with_the_list_written(tmp_path,
                                                                             repo_root):
    """mmengine's dataset gives up after 1,001 unreadable draws in a row with a bare
    ``Exception('Cannot find valid image after 1000! ...')`` in a worker's traceback, before
    any epoch ends, so no list was written (the issue: 200,000 empty files)."""
    import subprocess
    import sys
    data = tmp_path / 'data'
    write_image_folder(str(data / 'val'), ['a', 'b'], per_class=1, size=32)
    names = []
    for cls in ('a', 'b'):
        (data / 'train' / cls).mkdir(parents=True)
        for i in range(30):
            name = f'empty\n{i:02d}.JPEG'  # a name that would forge a line, too
            (data / 'train' / cls / name).write_bytes(b'')
            names.append(f'{data}/train/{cls}/empty\\n{i:02d}.JPEG')
    work_dir = tmp_path / 'work'
    options = ['train_cfg.max_epochs=1']
    for loader in ('train_dataloader', 'val_dataloader'):
        options += [f'{loader}.dataset.data_root={data}', f'{loader}.num_workers=2',
                    f'{loader}.persistent_workers=False', f'{loader}.batch_size=4']
    result = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir),
         '--cfg-options', *options], cwd=repo_root, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr and 'Cannot find valid image' not in result.stderr
    (line, ) = [line for line in result.stderr.splitlines() if ': error: ' in line]
    assert line == (
        f'tools/train.py: error: CustomDataset: 1001 samples drawn in a row from {data}/train '
        f'could not be read (60 samples in the data set); they are listed in '
        f'{work_dir}/unreadable_images.txt. Check the data with tools/misc/verify_dataset.py')
    listed = (work_dir / 'unreadable_images.txt').read_text().split('\n')[:-1]
    assert sorted(entry.split('\t')[1] for entry in listed) == sorted(names)
    assert all(entry.startswith('train\t') and entry.endswith(': empty file')
               for entry in listed)


class FindsUnreadableFiles(Hook):
    """Records two unreadable files as the loading transforms do after the first iteration,
    and then puts ``swap`` (a callable given the list's path) where the run's list goes."""

    def __init__(self, swap=None) -> None:
        self.swap = swap

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if batch_idx == 0:
            (log, ) = {h._log for h in runner.hooks if type(h).__name__ ==
                       'UnreadableImageHook'}
            log.record('/data/a/cut.JPEG', '/data/a/cut.JPEG: truncated JPEG')
            log.record('/data/b/empty.JPEG', '/data/b/empty.JPEG: empty file')
            if self.swap:
                self.swap(os.path.join(runner.work_dir, 'unreadable_images.txt'))


def _toy(work_dir, swap=None):
    from tests.helpers.toy_runner import make_runner
    return make_runner(str(work_dir), custom_hooks=[FindsUnreadableFiles(swap)],
                       default_hooks=dict(unreadable_images=dict(
                           type='UnreadableImageHook', max_fraction=0.5)))


def test_a_list_swapped_for_a_fifo_mid_run_stops_with_its_name_and_keeps_the_counts(tmp_path):
    """``unreadable_images.txt`` becomes a FIFO mid-run (checked when the run started). Before:
    the epoch's end blocked for ever opening it to append."""
    with ends_within(60), pytest.raises(ExplainedOSError) as failed:
        _toy(tmp_path, swap=os.mkfifo).train()
    listed = f'{tmp_path}/unreadable_images.txt'
    assert str(failed.value) == (
        f'2 unreadable image(s) of this train epoch could not be added to {listed} '
        f'(unreadable-image list {listed} is a FIFO (named pipe), not a regular file: it is not '
        'written (writing it could block or never end); put the real file there); the log above '
        'counts them and names them all. Remove what is there, then continue with '
        'tools/train.py CONFIG --resume')
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert '2 unreadable image(s) in this train epoch, 2 of 16 in this data set so far' in log
    assert '/data/a/cut.JPEG: truncated JPEG' in log and '/data/b/empty.JPEG: empty file' in log


def test_a_list_swapped_for_a_link_mid_run_is_not_written_through(tmp_path):
    """Before: the lines were appended to whatever file the link named (a shell's rc file
    would run them)."""
    target = tmp_path / 'elsewhere.txt'
    target.write_text('untouched\n')
    work = tmp_path / 'work'
    with pytest.raises(ExplainedOSError, match=r'is a symbolic link: it is not written through'):
        _toy(work, swap=lambda path: os.symlink(target, path)).train()
    assert target.read_text() == 'untouched\n'


def test_a_fifo_list_is_refused_when_the_run_starts(tmp_path):
    """Before: the epoch's end blocked for ever opening the FIFO to append the list."""
    os.mkfifo(tmp_path / 'unreadable_images.txt')
    with ends_within(20), pytest.raises(ExplainedError) as refused:
        _toy(tmp_path).train()
    assert str(refused.value) == (
        f'{tmp_path}/unreadable_images.txt is a FIFO (named pipe) where a file of the run goes: '
        'move or remove it, or choose another place')


def test_a_linked_records_folder_is_refused_and_its_target_left_alone(tmp_path):
    """The records folder is emptied when a run starts; a work dir copied from elsewhere may
    hold ``.unreadable_images`` as a link. Before: the folder it points to lost its ``rank0``."""
    elsewhere = tmp_path / 'elsewhere'
    (elsewhere / 'rank0').mkdir(parents=True)
    (elsewhere / 'rank0' / 'precious.txt').write_text('keep me')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    os.symlink(elsewhere, work_dir / '.unreadable_images')
    with pytest.raises(ExplainedError) as refused:
        _toy(work_dir).train()
    assert str(refused.value) == (
        f'{work_dir}/.unreadable_images is a symbolic link to {elsewhere}: the run empties that '
        'folder when it starts, so it must be a folder of the work dir; remove the link')
    assert (elsewhere / 'rank0' / 'precious.txt').read_text() == 'keep me'


def _check_as_rank(rank: int, store: str, work_dir: str, answers: str) -> None:
    import torch.distributed as dist

    from resnest_mm.engine.hooks.unreadable_image_hook import RECORDS, _check_run_files
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=2)
    try:
        records = os.path.join(work_dir, RECORDS)
        _check_run_files(SimpleNamespace(work_dir=work_dir), records,
                         os.path.join(records, f'rank{rank}'))
        answer = 'ran'
    except ExplainedError as exc:
        answer = str(exc)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(answers, str(rank)), 'w') as f:
        f.write(answer)


@pytest.mark.slow
def test_a_linked_folder_of_another_rank_stops_every_rank(tmp_path):
    """Each rank checks its own records folder (on another node, another disk): a link seen by
    rank 1 only stops rank 0 too, with rank 1's sentence (2 gloo processes)."""
    import torch.multiprocessing as mp
    work_dir = tmp_path / 'work'
    (work_dir / '.unreadable_images').mkdir(parents=True)
    (tmp_path / 'elsewhere').mkdir()
    os.symlink(tmp_path / 'elsewhere', work_dir / '.unreadable_images' / 'rank1')
    answers = tmp_path / 'answers'
    answers.mkdir()
    mp.spawn(_check_as_rank, args=(str(tmp_path / 'store'), str(work_dir), str(answers)),
             nprocs=2)
    want = (f'{work_dir}/.unreadable_images/rank1 is a symbolic link to {tmp_path}/elsewhere: '
            'the run empties that folder when it starts, so it must be a folder of the work '
            'dir; remove the link')
    assert [(answers / str(rank)).read_text() for rank in (0, 1)] == [want, want]
