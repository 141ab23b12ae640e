"""engine/ has no import circle: the loops package imports neither the hooks nor the runner,
the runner imports no hook (so it cannot ask ``isinstance`` of one), the hooks import no runner
(mmengine's direction: the runner builds hooks and loops; hooks and loops never reach back).
Read from the sources' import statements, lazy imports inside functions included."""
import ast
import os

import pytest

import resnest_mm

PACKAGE = os.path.dirname(resnest_mm.__file__)


def _imports(folder: str) -> dict:
    """``{file: {absolute module names it imports}}`` for the .py files of ``folder``."""
    found = {}
    for name in sorted(os.listdir(os.path.join(PACKAGE, folder))):
        if not name.endswith('.py'):
            continue
        path = os.path.join(PACKAGE, folder, name)
        package = ['resnest_mm', *folder.split('/')]
        modules = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = '.'.join(base + ([node.module] if node.module else []))
                modules.add(target)
                modules.update(f'{target}.{alias.name}' for alias in node.names)
        found[f'{folder}/{name}'] = modules
    return found


@pytest.mark.parametrize('folder,forbidden', [
    ('engine/loops', ('resnest_mm.engine.hooks', 'resnest_mm.engine.runner')),
    ('engine/runner', ('resnest_mm.engine.hooks', )),
    ('engine/hooks', ('resnest_mm.engine.runner', )),
])
def test_no_import_reaches_back(folder, forbidden):
    reaching = {f'{file} imports {module}' for file, modules in _imports(folder).items()
                for module in modules if module.startswith(forbidden)}
    assert not reaching

