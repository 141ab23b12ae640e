"""``load_config``: a config file read by mmengine, or one sentence saying what is wrong with it.

What mmengine's ``Config.fromfile`` lacks: a syntax error anywhere in a config's ``_base_`` chain
is reported as ``SyntaxError`` in ``<unknown>``, a missing ``_base_`` file as a bare
``FileNotFoundError``, a ``_base_`` cycle as a ``RecursionError`` after seconds, a config that
fails while executing as that error's traceback. Here each becomes an explained error naming the
file (and the line, or the files of the cycle), raised before anything is built or logged.
"""
from __future__ import annotations

import ast
import os
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config

from ..utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from ..utils.mmengine_private import config_path


def _bases(path: str, tree: ast.Module) -> List[str]:
    """The local ``_base_`` files a parsed config names (package bases are mmengine's)."""
    return [osp.normpath(osp.join(osp.dirname(path), name)) for name in _base_names(tree)
            if '::' not in name]


def _base_names(tree: ast.Module) -> List[str]:
    """The ``_base_`` entries of a parsed config as written (local or ``package::path``)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = value if isinstance(value, (list, tuple)) else [value]
            return [n for n in names if isinstance(n, str) and '{{' not in n]
    return []


def _resolve(name: str, path: str) -> Optional[str]:
    """The file a ``_base_`` entry of ``path`` names, the way mmengine finds it."""
    try:
        found, _ = config_path(name, path)  # package::path through the package
    except Exception:  # a package that is not installed: mmengine says so when loading
        return None
    return osp.normpath(osp.abspath(found))


def _parse(path: str) -> Optional[ast.Module]:
    try:
        with open(path, encoding='utf-8') as f:
            return ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None  # load_config names syntax errors; a missing file mmengine reports


def config_chain(path: str) -> List[Tuple[str, ast.Module]]:
    """Every Python file of the ``_base_`` chain of ``path`` (itself first), each parsed.

    Raises:
        ExplainedValueError: the chain has a cycle; the sentence names its files in order.
    """
    chain: List[Tuple[str, ast.Module]] = []
    seen: set = set()

    def walk(file: str, stack: List[str]) -> None:
        if file in stack:
            cycle = stack[stack.index(file):] + [file]
            raise ExplainedValueError(
                f'{path}: the _base_ files form a cycle: {" -> ".join(cycle)}; remove one of '
                'these _base_ entries')
        if file in seen or not file.endswith('.py') or not osp.isfile(file):
            return
        tree = _parse(file)
        if tree is None:
            return
        seen.add(file)
        chain.append((file, tree))
        for name in _base_names(tree):
            base = _resolve(name, file)
            if base:
                walk(base, stack + [file])

    walk(osp.normpath(osp.abspath(path)), [])
    return chain


def _syntax_error(path: str, seen: Optional[set] = None) -> Optional[Tuple[str, SyntaxError]]:
    """The first file of the ``_base_`` chain of ``path`` that does not parse, and its error."""
    seen = seen if seen is not None else set()
    if path in seen or not osp.isfile(path) or not path.endswith('.py'):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return path, exc
    for base in _bases(path, tree):
        found = _syntax_error(base, seen)
        if found:
            return found
    return None


def load_config(path: str) -> Config:
    """``Config.fromfile(path)``, with every way it fails turned into one sentence.

    Raises:
        ExplainedFileNotFoundError: the config, or a ``_base_`` file it names, does not exist.
        ExplainedValueError: a syntax error (file:line), a ``_base_`` cycle (its files) or an
            error while executing the file.
    """
    if not osp.isfile(path):
        raise ExplainedFileNotFoundError(f'config file {path} does not exist')
    config_chain(path)  # a _base_ cycle: mmengine would recurse until Python gives up
    try:
        return Config.fromfile(path)
    except SyntaxError as exc:
        found = _syntax_error(osp.abspath(path))
        where, error = found if found else (path, exc)
        raise ExplainedValueError(
            f'{where}:{error.lineno}: syntax error in the config: {error.msg}'
            + (f' ({error.text.strip()})' if error.text else '')
            + (f', in a _base_ of {path}' if osp.abspath(where) != osp.abspath(path) else '')
            + '.') from None
    except FileNotFoundError as exc:
        missing = exc.filename or str(exc)
        raise ExplainedFileNotFoundError(
            f'{path}: the _base_ file {os.path.normpath(missing)} does not exist; check the '
            '_base_ list (paths are relative to the config file).') from None
    except Exception as exc:  # the file runs as Python: anything can fail there
        raise ExplainedValueError(
            f'{path} could not be loaded: {type(exc).__name__}: {exc}. Check the config '
            'file (and its _base_ files) at that name.') from None
