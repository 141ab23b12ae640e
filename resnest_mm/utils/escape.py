"""Names from disk as data: the one escaping function for what the project prints or writes.

A file name on Linux may hold any byte but ``/`` and NUL: a newline forges a line in a list
file or a log, a tab forges a column, an ANSI escape recolours or rewrites the terminal, a
right-to-left override reverses what a reader sees. Python's logging, ``print`` and mmengine's
logger pass such text through unchanged, so every name read from disk (file and folder names,
tar member names, class names) goes through :func:`escape_name` before it reaches a log line,
the terminal or a file the project writes.
"""
from __future__ import annotations

_SHORT = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\'}


def _escape_char(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f'\\x{code - 0xDC00:02x}'
    if code <= 0xFF:
        return f'\\x{code:02x}'
    if code <= 0xFFFF:
        return f'\\u{code:04x}'
    return f'\\U{code:08x}'


def escape_name(text: str) -> str:
    """``text`` with every character that is not printable written as a backslash escape.

    Control characters (C0, DEL, C1), line and paragraph separators, format characters (bidi
    overrides, zero-width spaces), other non-printables (``str.isprintable``, ASCII space
    excepted) and bytes that were not UTF-8 become ``\\n``, ``\\t``, ``\\x1b``, ``\\u202e``
    ..., and a backslash becomes ``\\\\`` so that the escaped form is unambiguous. Printable
    text, any script included, is returned unchanged: the result is one line, and equal to the
    input exactly when the input needed no escaping.

    Args:
        text: A name or a sentence holding names.

    Returns:
        The escaped text.
    """
    if text.isprintable() and '\\' not in text:
        return text  # the common case, at C speed
    return ''.join(char if char.isprintable() and char != '\\' else _escape_char(char)
                   for char in text)
