"""ExplainedError: the sentence is the message, the built-in type still matches."""
import pytest

from resnest_mm.utils.errors import ExplainedKeyError, ExplainedValueError, run_tool


def test_message_is_the_sentence_and_the_type_is_still_builtin():
    error = ExplainedKeyError('--cfg-options a.b: the config has no key a')
    assert str(error) == '--cfg-options a.b: the config has no key a'  # KeyError would quote it
    assert isinstance(error, KeyError) and isinstance(ExplainedValueError('x'), ValueError)


def test_run_tool_prints_one_line_and_exits_2(capsys):
    def main():
        raise ExplainedValueError('the folder is empty; add images')

    with pytest.raises(SystemExit) as exit_info:
        run_tool(main, 'tools/x.py')
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == 'tools/x.py: error: the folder is empty; add images\n'
    assert run_tool(lambda: 7, 'tools/x.py') == 7


def test_other_errors_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_tool(lambda: 1 / 0, 'tools/x.py')
