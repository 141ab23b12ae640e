"""The evaluation progress bar, seen in the output of a real run."""
import re

import pytest

pytestmark = pytest.mark.slow  # subprocesses or whole runs


def test_validation_draws_a_bar_that_ends_before_the_logger_prints(tiny_run):
    out = tiny_run['stdout']
    assert len(re.findall(r'\] 5/5, [\d.]+ task/s', out)) == 2  # 5 batches, 2 validations
    val_lines = [line for line in out.splitlines() if 'Epoch(val)' in line]
    assert val_lines
    for line in val_lines:
        assert 'task/s' not in line, f'a logger line shares the bar\'s line: {line!r}'
