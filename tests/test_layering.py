"""The package's layering (``.importlinter``, run by ``make lint``; docs/architecture.md).

Each test copies the package to a temporary folder, breaks it there in one way, and runs the real
``lint-imports`` on the copy: the contract must say which import broke it. The unbroken copy keeps
the contract, so a contract that refuses everything fails here too.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), 'lint-imports')

pytestmark = pytest.mark.slow


def _lint_copy(tmp_path, edits):
    """``lint-imports`` over a copy of the package with ``edits`` ({module path: appended line})."""
    shutil.copytree(os.path.join(ROOT, 'resnest_mm'), tmp_path / 'resnest_mm',
                    ignore=shutil.ignore_patterns('__pycache__', '*.so'))
    shutil.copy(os.path.join(ROOT, '.importlinter'), tmp_path / '.importlinter')
    for module, line in edits.items():
        with open(tmp_path / module, 'a') as f:
            f.write(f'\n{line}  # noqa\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    return subprocess.run([LINT_IMPORTS, '--no-cache'], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers(tmp_path):
    done = _lint_copy(tmp_path, {})
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_upward_import_breaks_the_layers(tmp_path):
    done = _lint_copy(tmp_path, {
        'resnest_mm/engine/hooks/throughput_hook.py': 'from ...frontends import cli'})
    assert done.returncode != 0
    assert 'resnest_mm.engine is not allowed to import resnest_mm.frontends' in done.stdout
    assert 'resnest_mm.engine.hooks.throughput_hook -> resnest_mm.frontends.cli' in done.stdout


def test_a_model_that_imports_the_data_pipeline_breaks_the_layers(tmp_path):
    done = _lint_copy(tmp_path, {
        'resnest_mm/models/backbones/resnest.py': 'from ...datasets import decode'})
    assert done.returncode != 0
    assert 'resnest_mm.models is not allowed to import resnest_mm.datasets' in done.stdout


def test_a_circle_inside_a_package_breaks_the_contract(tmp_path):
    # The circle the engine had: the runner imports the hooks, a hook imports the runner.
    done = _lint_copy(tmp_path, {
        'resnest_mm/engine/hooks/throughput_hook.py': 'from ..runner import resnest_runner',
        'resnest_mm/engine/runner/resnest_runner.py': 'from ..hooks import throughput_hook'})
    assert done.returncode != 0
    assert 'No cycles are allowed in resnest_mm.engine' in done.stdout
