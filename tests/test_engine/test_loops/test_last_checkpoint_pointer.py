"""``<work_dir>/last_checkpoint`` is a file on disk like any other: hostile until checked.

Every route by which it is read or written in our runner: ``--resume`` / ``resume=True`` never
read it (``loops.resume`` picks by recorded position, ``ResNeStRunner.load_or_resume`` replaces
mmengine's ``find_latest_checkpoint``); ``save_training_checkpoint`` and ``NonFiniteLossHook``
read it for their messages (:func:`resnest_mm.engine.loops.last_checkpoint`); mmengine's plain
``CheckpointHook`` writes it with ``open(path, 'w')``, which follows a link and blocks on a
FIFO, so a pointer that is not a regular file is refused when training starts.
"""
import math
import os

import pytest
import torch

from resnest_mm.engine.loops import last_checkpoint
from resnest_mm.utils.errors import ExplainedError
from tests.helpers.timeouts import ends_within
from tests.helpers.toy_runner import make_runner, toy_dataset

ATOMIC = dict(type='AtomicCheckpointHook', interval=1)
PLAIN = dict(type='CheckpointHook', interval=1)


def _toy(work_dir, checkpoint=ATOMIC, **kwargs):
    return make_runner(str(work_dir), default_hooks=dict(checkpoint=checkpoint),
                       train_cfg=dict(by_epoch=True, max_epochs=1), **kwargs)


@pytest.mark.parametrize('checkpoint', [ATOMIC, PLAIN], ids=['ours', 'mmengine'])
def test_a_fifo_pointer_is_refused_before_training(tmp_path, checkpoint):
    """Before: the first save hangs (our hook reads the pointer for its message, mmengine's
    opens it for writing, and both block on a FIFO until someone opens its other end)."""
    os.mkfifo(tmp_path / 'last_checkpoint')
    with ends_within(20), pytest.raises(ExplainedError) as refused:
        _toy(tmp_path, checkpoint).train()
    assert str(refused.value) == (
        f'{tmp_path}/last_checkpoint is a FIFO (named pipe) where a file of the run goes: move '
        'or remove it, or choose another place')
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.pth')]


def test_a_linked_pointer_is_refused_and_its_target_left_alone(tmp_path):
    """Before: mmengine's ``CheckpointHook`` wrote the checkpoint's path through the link,
    over the file it points to (here a user's notes outside the work dir)."""
    victim = tmp_path / 'notes.txt'
    victim.write_text('my notes\n')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    os.symlink(victim, work_dir / 'last_checkpoint')
    with pytest.raises(ExplainedError, match=r'^.*/work/last_checkpoint is a symbolic link to '
                                             r'.*/notes\.txt where a file of the run goes'):
        _toy(work_dir, PLAIN).train()
    assert victim.read_text() == 'my notes\n'


def test_a_binary_pointer_is_replaced_at_the_first_save(tmp_path):
    """Before: ``UnicodeDecodeError`` traceback at the first save (the pointer was decoded as
    UTF-8 for the disk-full message)."""
    (tmp_path / 'last_checkpoint').write_bytes(b'\xff\xfe\x00garbage\x80')
    runner = _toy(tmp_path)
    runner.train()
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_1.pth')


def test_the_pointer_is_read_bounded_and_escaped(tmp_path):
    """What the messages quote: a name with a newline or an ANSI escape is one escaped line,
    a huge or non-regular pointer is not read (before: read whole, printed raw, or blocked)."""
    pointer = tmp_path / 'last_checkpoint'
    assert last_checkpoint(str(tmp_path)) is None
    pointer.write_bytes(b'/w/iter_4.pth\n\x1b[2Jforged line\xff\n')
    assert last_checkpoint(str(tmp_path)) == '/w/iter_4.pth\\n\\x1b[2Jforged line\\xff'
    pointer.write_bytes(b'/w/' + b'x' * (1 << 20))
    assert last_checkpoint(str(tmp_path)).startswith(
        f'unreadable (pointer {pointer} is 1,048,579 bytes')
    pointer.unlink()
    os.mkfifo(pointer)
    with ends_within(5):
        assert last_checkpoint(str(tmp_path)).startswith(
            f'unreadable (pointer {pointer} is a FIFO (named pipe), not a regular file')


def test_a_nan_loss_names_the_pointer_escaped(tmp_path):
    """Before: the raw pointer text in the sentence (a forged second line)."""
    data = toy_dataset()
    data[1]['inputs'] = torch.full((4, ), math.nan)
    (tmp_path / 'last_checkpoint').write_text('/w/iter_4.pth\nforged')
    runner = _toy(tmp_path, custom_hooks=[dict(type='NonFiniteLossHook')],
                  train_dataloader=dict(dataset=data, batch_size=4,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='default_collate')))
    with pytest.raises(FloatingPointError) as stopped:
        runner.train()
    assert 'The last good checkpoint is /w/iter_4.pth\\nforged.' in str(stopped.value)
