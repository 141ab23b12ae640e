"""Progress of a long tool: a line every few percent into a log, rich's bar on a terminal."""
import io

from resnest_mm.utils.task_progress import TaskProgress


def test_off_a_terminal_it_writes_a_line_every_few_percent():
    log = io.StringIO()
    with TaskProgress(1000, 'verify data', stream=log, every_percent=10) as progress:
        for _ in range(1003):  # more than announced: the lines stop at 100%
            progress.update()
    lines = log.getvalue().splitlines()
    assert [line.split('), ')[0] + ')' for line in lines] == [
        f'verify data: {p}% ({p * 10:,}/1,000)' for p in range(10, 101, 10)]
    assert '\r' not in log.getvalue() and len(log.getvalue()) < 1000


def test_on_a_terminal_it_draws_a_bar():
    screen = io.StringIO()
    with TaskProgress(50, 'prepare', stream=screen, terminal=True) as progress:
        for _ in range(50):
            progress.update()
    assert 'prepare' in screen.getvalue() and '50/50' in screen.getvalue()


def test_one_clock_for_every_duration_shown():
    """TaskProgress and ProgressBarHook show durations alike."""
    from resnest_mm.engine.hooks import progress_bar_hook
    from resnest_mm.utils.task_progress import clock
    assert progress_bar_hook.clock is clock
    assert [clock(s) for s in (0, 59.9, 3725, -4, 90061)] == [
        '0:00:00', '0:00:59', '1:02:05', '0:00:00', '1 day, 1:01:01']
    assert clock(None) == clock(float('nan')) == clock(float('inf')) == '-:--:--'
