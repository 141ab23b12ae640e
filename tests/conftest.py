"""Shared test set-up: the package on sys.path, compat applied, quiet mmengine logs."""
import logging
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import resnest_mm.registry  # noqa: E402,F401  (applies resnest_mm.compat)

# standin_apex / simulated_npu fixtures for the contract tests
pytest_plugins = ['tests.helpers.standins']


@pytest.fixture(autouse=True)
def _quiet_mmengine():
    """mmengine logs every parameter's init at INFO; keep test output readable."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT
