"""Run tools' scripts up to the end of their argument parsing, then stop (for the docs
harness, tests/test_docs_commands.py): proves a documented command parses where running it
needs what the test machine lacks (ImageNet, 8 devices, a cluster).

A test stand-in, never used by the package: ``ArgumentParser.parse_args`` and
``parse_known_args`` are wrapped in this process only, so a parse error still ends in
argparse's message and status 2, and a parse that works stops the tool before it does any
work. Each line of stdin is a JSON list ``[script, arg, ...]``; each gets one JSON line
back, ``{"status": 0, "output": "..."}`` (status 0: parsed; 2: argparse refused; 3: the
script never parsed arguments).

    echo '["tools/train.py", "configs/resnest50_1xb32_digits.py"]' | \\
        python tests/helpers/parse_only.py
"""
import argparse
import contextlib
import io
import json
import os
import runpy
import sys


class _ParsedError(Exception):
    """Raised when the arguments are parsed: the tool stops there."""


def _parse_one(argv: list) -> dict:
    out = io.StringIO()
    saved = sys.argv
    sys.argv = list(argv)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(argv[0], run_name='__main__')
        return dict(status=3, output=out.getvalue()[-2000:])
    except _ParsedError:
        return dict(status=0, output=out.getvalue()[-2000:])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        return dict(status=code, output=out.getvalue()[-2000:])
    except Exception as exc:  # the tool failed before or while parsing
        return dict(status=1, output=f'{out.getvalue()[-1500:]}{type(exc).__name__}: {exc}')
    finally:
        sys.argv = saved


def main() -> None:
    depth = [0]

    def stopping(parse):
        def parse_and_stop(self, args=None, namespace=None):
            depth[0] += 1
            try:
                result = parse(self, args, namespace)
            finally:
                depth[0] -= 1
            if depth[0] == 0:  # the outermost parse is done: stop before the tool works
                raise _ParsedError
            return result
        return parse_and_stop

    # this test process only; parse_args calls parse_known_args, and so do subcommands
    for name in ('parse_args', 'parse_known_args'):
        setattr(argparse.ArgumentParser, name, stopping(getattr(argparse.ArgumentParser, name)))
    sys.path.insert(0, os.getcwd())
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_parse_one(json.loads(line))), flush=True)


if __name__ == '__main__':
    main()
