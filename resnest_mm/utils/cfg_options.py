"""``CfgOptionsAction``: mmengine's ``--cfg-options`` parsing, refusing what it would misread."""
from __future__ import annotations

import argparse
import ast
from typing import Any, Optional, Sequence

from mmengine.config import DictAction

from .errors import ExplainedValueError

_PAIRS = {'(': ')', '[': ']', '{': '}'}


def _unbalanced(value: str) -> Optional[str]:
    """Why ``value`` cannot be a list/tuple/dict/string literal, or None when it can."""
    stack = []
    quote = None
    for char in value:
        if quote:
            if char == quote:
                quote = None
            continue
        if char in '\'"':
            quote = char
        elif char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in _PAIRS.values():
            if not stack or stack.pop() != char:
                return f'{char!r} closes nothing'
    if quote:
        return f'the quote {quote} is never closed'
    if stack:
        return f'{stack[-1]!r} is missing'
    return None


class _NotDataError(ValueError):
    """A value that is not a literal built from numbers, strings, lists, tuples and dicts."""


def _literal(node: ast.AST) -> Any:
    """``ast.literal_eval`` that also takes ``dict(key=value, ...)``, the way configs write
    dicts; nothing is called or looked up."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == 'dict' and not node.args and all(k.arg for k in node.keywords):
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _NotDataError(ast.dump(node)) from None


def parse_dicts(value: str) -> Any:
    """``value`` as data when it writes a dict as ``dict(...)`` (anywhere inside a list or a
    tuple), else ``None``: mmengine's ``DictAction`` keeps such a value as the text
    ``"dict(type='X')"``, which fails later (a ``TypeError`` for ``visualizer.vis_backends``)."""
    if 'dict(' not in value:
        return None
    try:
        return _literal(ast.parse(value.strip(), mode='eval').body)
    except (SyntaxError, _NotDataError, RecursionError):
        return None


class CfgOptionsAction(DictAction):
    """``--cfg-options KEY=VALUE ...`` exactly as mmengine's ``DictAction`` parses it, except that
    an item without ``=`` and a value with unbalanced brackets or quotes are refused in one
    sentence. mmengine's raises ``ValueError: not enough values to unpack`` for the first,
    asserts on some unbalanced values (``topk=(1,5``) and silently keeps others as strings
    (``batch_size=[32`` becomes the text ``'[32'``). A value holding ``dict(...)``, the way
    configs write dicts (``"visualizer.vis_backends=[dict(type='LocalVisBackend')]"``), is
    read as data here, where mmengine keeps it as text.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Sequence[str], option_string: Optional[str] = None) -> Any:
        for item in values:
            key, sep, value = item.partition('=')
            if not sep or not key:
                raise ExplainedValueError(
                    f'--cfg-options {item!r}: each item is KEY=VALUE (e.g. '
                    'train_dataloader.batch_size=64); this one has no key or no "="')
            why = _unbalanced(value)
            if why:
                raise ExplainedValueError(
                    f'--cfg-options {item}: the value {value!r} is malformed ({why}); quote '
                    'the whole item for the shell, e.g. "model.head.topk=(1, 5)"')
        ours = {}
        for item in values:
            key, _, value = item.partition('=')
            parsed = parse_dicts(value)
            if parsed is not None:
                ours[key] = parsed
        rest = [item for item in values if item.partition('=')[0] not in ours]
        try:
            super().__call__(parser, namespace, rest, option_string)
        except RecursionError:  # mmengine's DictAction recurses without end on f(1,2)
            raise ExplainedValueError(
                f'--cfg-options {" ".join(values)}: a value holds a call or an expression '
                "mmengine cannot parse; give numbers, strings, lists or tuples (e.g. "
                "\"model.head.topk=(1, 5)\"), and set nested dicts key by key") from None
        except (AssertionError, ValueError, SyntaxError) as exc:
            raise ExplainedValueError(f'--cfg-options {" ".join(values)}: {exc}') from None
        options = getattr(namespace, self.dest, None) or {}
        options.update(ours)
        setattr(namespace, self.dest, options)
