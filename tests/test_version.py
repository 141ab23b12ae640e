"""The supported stack is the tested one: requirements/runtime.txt and resnest_mm.version agree,
and an unsupported torch or mmengine is refused on import in one sentence."""
import os
import re
import subprocess
import sys

import pytest

from resnest_mm import version

FAKE = '''
import importlib.metadata as metadata
real = metadata.version
metadata.version = lambda name: {fake!r}.get(name) or real(name)
import resnest_mm
'''


def test_runtime_requirements_are_the_supported_ranges(repo_root):
    def norm(text):  # 2.2.0 and 2.2 are the same bound
        parts = list(version._parse(text))
        while parts and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    ranges = {}
    for line in open(os.path.join(repo_root, 'requirements/runtime.txt')):
        match = re.match(r'([\w-]+)>=([\d.]+),<([\d.]+)$', line.strip())
        if match:
            ranges[match.group(1)] = (norm(match.group(2)), norm(match.group(3)))
    assert len(ranges) == len(version.SUPPORTED)
    for names, (low, high) in version.SUPPORTED.items():
        assert ranges[names[0]] == (norm(version._dotted(low)), norm(version._dotted(high)))


@pytest.mark.parametrize('name,found,needed', [
    ('torch', '2.3.1', 'torch>=2.14,<2.15'),
    ('mmengine', '0.10.3', 'mmengine>=0.10.7,<0.11'),
    ('torch', '2.15.0', 'torch>=2.14,<2.15'),
])
def test_unsupported_versions_are_named_on_import(repo_root, name, found, needed):
    code = FAKE.format(fake={name: found})
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('resnest_mm.version.UnsupportedVersionError: resnest_mm')
    assert f'needs {needed}' in last and f'but {name} {found} is installed' in last
    assert 'AttributeError' not in result.stderr


def test_the_installed_stack_passes():
    version.check_installed()
    assert version._parse('2.14.1+cu130') == (2, 14, 1)
    assert version._parse('2.14.0a0+git1234') == (2, 14, 0)


def test_an_untested_stack_can_be_tried_deliberately(repo_root):
    code = FAKE.format(fake={'torch': '2.11.0'}) + 'print("imported")'
    env = dict(os.environ, PYTHONPATH=repo_root, RESNEST_MM_ALLOW_UNTESTED='1')
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0 and 'imported' in result.stdout, result.stderr[-2000:]
