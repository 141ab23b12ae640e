"""Progress of training and evaluation, seen where it is written: a pipe or a file (lines every
few percent), and a real pseudo-terminal (one bar redrawn in place, wiped before log lines)."""
import contextlib
import io
import logging
import os
import pty
import re
import sys
import threading

import pytest

from tests.helpers.toy_runner import make_runner, toy_dataset

ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')


def _train(work_dir, n=200, batch=2, **progress):
    """One epoch of the toy model (n / batch iterations) with the progress hook's options."""
    runner = make_runner(
        str(work_dir),
        train_dataloader=dict(dataset=toy_dataset(n), batch_size=batch,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=25),
                           progress_bar=dict(type='ProgressBarHook', **progress)))
    runner.logger.setLevel(logging.INFO)  # the log lines the bar must make room for
    runner.train()
    return runner


def test_off_a_terminal_a_line_every_ten_percent_not_one_per_iteration(tmp_path):
    out = io.StringIO()  # not a terminal, like a log file or a Slurm job's output
    with contextlib.redirect_stdout(out):
        _train(tmp_path)
    lines = [line for line in out.getvalue().splitlines() if line.startswith('Epoch 1/1 ')]
    assert len(lines) == 10, lines  # 100 iterations, one line per 10 %
    assert lines[0].startswith('Epoch 1/1 10/100 (10%)')
    assert lines[-1].startswith('Epoch 1/1 100/100 (100%)')
    for line in lines:
        assert re.search(r'ETA \d+:\d\d:\d\d  [\d.]+ img/s  loss \d+\.\d{4}$', line), line
    assert '\r' not in out.getvalue() and '\x1b[' not in out.getvalue()


@pytest.mark.slow
def test_percent_sets_how_often_and_off_writes_nothing(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _train(tmp_path / 'a', percent=25)
    assert len(re.findall(r'^Epoch 1/1 \d+/100 ', out.getvalue(), re.M)) == 4
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _train(tmp_path / 'b', mode='off')
    assert not re.search(r'^Epoch 1/1 ', out.getvalue(), re.M)


def test_bad_options_are_refused():
    from resnest_mm.engine.hooks import ProgressBarHook
    with pytest.raises(ValueError, match='mode'):
        ProgressBarHook(mode='fancy')
    with pytest.raises(ValueError, match='percent'):
        ProgressBarHook(percent=0)


def _on_a_terminal(run):
    """What ``run()`` writes to stdout when stdout is a real pseudo-terminal."""
    master, slave = pty.openpty()
    chunks = []

    def read():  # the terminal's buffer is small: drain it while the run writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    terminal = open(slave, 'w', encoding='utf-8', closefd=True)
    saved, sys.stdout = sys.stdout, terminal
    try:
        run()
    finally:
        sys.stdout = saved
        terminal.flush()
        terminal.close()
        reader.join(timeout=5)
        os.close(master)
    return b''.join(chunks).decode('utf-8', 'replace')


def test_on_a_terminal_one_bar_redrawn_in_place_and_wiped_before_log_lines(tmp_path):
    raw = _on_a_terminal(lambda: _train(tmp_path, refresh=1e6))  # draw at every iteration
    lines = raw.replace('\r\n', '\n').split('\n')
    bar_lines = [line for line in lines if 'Epoch 1/1' in line]
    # the bar is redrawn on its line (\r), 100 times, and only ends its line when done
    assert len(re.findall(r'\rEpoch 1/1 ', raw)) >= 100
    assert len(bar_lines) == 5, bar_lines  # 4 log lines end the 4 screens the bar was on
    final = ANSI.sub('', bar_lines[-1].split('\r')[-1])
    assert re.search(r'100/100 +100% .*ETA .* [\d.]+ img/s  loss \d+\.\d{4}', final), final
    # every log line starts on a wiped line, never after the bar's text
    logged = [line for line in lines if 'Epoch(train)' in line]
    assert len(logged) == 4
    for line in logged:
        assert re.match(r'(\x1b\[K)?\d\d/\d\d \d\d:', line.split('\r')[-1]), repr(line)
        assert 'img/s' not in line.split('\r')[-1], repr(line)


def test_validation_lines_end_before_the_logger_prints(tiny_run):
    out = tiny_run['stdout']  # a real 2-epoch run, stdout not a terminal
    assert len(re.findall(r'^Validation 5/5 \(100%\)', out, re.M)) == 2  # 5 batches, 2 runs
    assert len(re.findall(r'^Epoch 2/2 5/5 \(100%\).* img/s  loss ', out, re.M)) == 1
    for line in out.splitlines():
        if 'Epoch(val)' in line:
            assert 'img/s' not in line, f'a logger line shares the progress line: {line!r}'


def _test_tool(tiny_run, stdout):
    """``tools/test.py`` on the tiny run's checkpoint, its output going to ``stdout``."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    options = [f'test_dataloader.dataset.data_root={tiny_run["data_root"]}',
               'test_dataloader.batch_size=4', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False']
    return subprocess.Popen(
        [sys.executable, 'tools/test.py', 'configs/resnest50_1xb32_digits.py',
         tiny_run['checkpoint'], '--work-dir', tiny_run['work_dir'] + '-test', '--cfg-options',
         *options], cwd=root, stdout=stdout, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_tools_test_through_a_pipe_writes_lines(tiny_run):
    import subprocess
    process = _test_tool(tiny_run, subprocess.PIPE)
    out = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, out[-2000:]
    lines = re.findall(r'^Test \d+/5 \(\d+%\)  elapsed .* ETA .* img/s$', out, re.M)
    assert len(lines) == 5, out[-2000:]  # 5 batches: one line each (every 20 % >= 10 %)
    assert '\r' not in out and '\x1b[K' not in out


@pytest.mark.slow
def test_tools_test_on_a_pseudo_terminal_draws_a_bar(tiny_run):
    master, slave = pty.openpty()
    process = _test_tool(tiny_run, slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=300) == 0
    raw = b''.join(chunks).decode('utf-8', 'replace')
    assert re.search(r'\rTest .*5/5.*100%', ANSI.sub('', raw)), raw[-2000:]
    assert not re.search(r'^Test \d+/5 \(', ANSI.sub('', raw), re.M)  # no line mode here


def test_an_iteration_based_run_has_one_bar_over_all_iterations(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runner = make_runner(
            str(tmp_path), train_cfg=dict(by_epoch=False, max_iters=20),
            # the 20 iterations in one pass over the data: mmengine's iteration-based loader
            # sleeps 2 s at every new pass
            train_dataloader=dict(dataset=toy_dataset(80), batch_size=4,
                                  sampler=dict(type='DefaultSampler', shuffle=True),
                                  collate_fn=dict(type='default_collate')),
            param_scheduler=dict(type='ConstantLR', factor=1.0, by_epoch=False),
            default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=20,
                                               by_epoch=False),
                               logger=dict(type='LoggerHook', interval=10)))
        runner.train()
    lines = re.findall(r'^Train (\d+)/20 ', out.getvalue(), re.M)
    assert lines == [str(i) for i in range(2, 21, 2)], out.getvalue()[-2000:]
