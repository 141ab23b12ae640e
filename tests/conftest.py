"""Shared test set-up: the package on sys.path, its registries loaded, quiet mmengine logs.

Markers (pytest.ini): ``slow`` (subprocesses, whole runs, big models: ``make test-fast`` leaves
them out) and ``compat`` (what ``make test-torch2.1`` / ``test-torch2.15`` run on the oldest and
the newest supported torch)."""
import logging
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import resnest_mm.registry  # noqa: E402,F401  (resnest_mm's and mmpretrain's types registered)

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


def _managed_classes() -> list:
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if '_instance_dict' in vars(cls):
            found.append(cls)
    return found


@pytest.fixture(autouse=True)
def _forget_mmengine_instances():
    """Drop the loggers, visualizers and message hubs a test's Runners created.

    mmengine names them after the Runner's start second, so a Runner built in the same second as
    one of an earlier test would reuse that test's visualizer, writing into its (by then
    deleted) tmp_path.
    """
    before = {cls: set(cls._instance_dict) for cls in _managed_classes()}
    yield
    for cls in _managed_classes():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            instance = cls._instance_dict.pop(name)
            for handler in getattr(instance, 'handlers', [])[:]:
                if isinstance(handler, logging.FileHandler):
                    handler.close()
                    instance.removeHandler(handler)


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory) -> dict:
    """A real 2-epoch run of the demo config on 20 JPEGs (see tests/helpers/tiny_run.py)."""
    from tests.helpers.tiny_run import tiny_digits_run
    return tiny_digits_run(str(tmp_path_factory.mktemp('tiny_run')))


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> str:
    """Data of the tiny-ResNet config (tests/helpers/tiny_config.py): 2 classes x 6 JPEGs."""
    from tests.helpers.tiny_config import write_tiny_data
    root = tmp_path_factory.mktemp('tiny_data')
    write_tiny_data(root)
    return root


@pytest.fixture
def one_thread():
    """torch on one thread for a test's tiny model: on 2 cores shared with other processes, a
    second thread only waits for the first (a tiny ResNet's epoch took 2-3 times as long)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
