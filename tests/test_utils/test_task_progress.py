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
