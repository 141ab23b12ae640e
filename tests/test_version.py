"""The supported ranges: requirements/runtime.txt and resnest_mm.version agree, an unsupported
torch or mmengine is refused on import in one sentence that names no file the wheel lacks, and
an environment with neither mmcv nor mmcv-lite is told which extra to install."""
import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

from resnest_mm import version

# Installed versions as the metadata reports them; None: not installed.
FAKE = '''
import importlib.metadata as metadata
real, fake = metadata.version, {fake!r}

def version(name):
    if name in fake and fake[name] is None:
        raise metadata.PackageNotFoundError(name)
    return fake.get(name) or real(name)

metadata.version = version
import resnest_mm

pytestmark = pytest.mark.compat  # must hold on every supported torch
'''


def _check(monkeypatch, fake: dict) -> str:
    """check_installed() with the metadata answering ``fake``; '' or the refusal's sentence."""
    real = metadata.version

    def fake_version(name):
        if name in fake and fake[name] is None:
            raise metadata.PackageNotFoundError(name)
        return fake.get(name) or real(name)

    monkeypatch.setattr(version.metadata, 'version', fake_version)
    try:
        version.check_installed()
    except version.UnsupportedVersionError as exc:
        return str(exc)
    return ''


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
    assert not {'mmcv', 'mmcv-lite'} & set(ranges)  # never a second copy beside the user's
    for names, (low, high) in version.SUPPORTED.items():
        assert ranges[names[0]] == (norm(version._dotted(low)), norm(version._dotted(high)))


@pytest.mark.parametrize('name,found,needed', [
    ('torch', '2.0.1', 'torch>=2.1,<2.16'),
    ('torch', '2.16.0', 'torch>=2.1,<2.16'),
    ('mmengine', '0.9.1', 'mmengine>=0.10.0,<0.11'),
    ('mmcv', '1.7.2', 'mmcv>=2.0,<2.4'),
])
def test_unsupported_versions_are_refused_in_one_sentence(monkeypatch, name, found, needed):
    fake = {name: found, 'mmcv-lite': None} if name == 'mmcv' else {name: found}
    sentence = _check(monkeypatch, fake)
    assert f'supports {needed}, but {name} {found} is installed' in sentence
    assert f"pip install '{needed}'" in sentence
    assert 'requirements/' not in sentence  # the wheel ships no requirements folder
    assert sentence.endswith('.') and '. ' not in sentence and '\n' not in sentence


@pytest.mark.parametrize('fake', [{}, {'torch': '2.1.2', 'torchvision': '0.16.2',
                                       'mmengine': '0.10.0', 'mmpretrain': '1.0.0'},
                                  {'torch': '2.15.0+cu132', 'torchvision': '0.29.2'},
                                  {'torch': '2.1.0a0+git1234'}],
                         ids=['installed', 'oldest', 'newest', 'npu-build'])
def test_the_supported_range_passes(monkeypatch, fake):
    assert _check(monkeypatch, fake) == ''


@pytest.mark.parametrize('present', [None, 'mmcv', 'mmcv-lite'])
def test_mmcv_or_mmcv_lite_whichever_is_there(monkeypatch, present):
    fake = {'mmcv': None, 'mmcv-lite': None}
    if present:
        fake[present] = '2.2.0'
    sentence = _check(monkeypatch, fake)
    if present:
        assert sentence == ''
    else:
        assert sentence == ('resnest_mm needs mmcv or mmcv-lite (>=2.0,<2.4) and neither is '
                            "installed: pip install 'resnest_mm[mmcv-lite]', or install the full "
                            'mmcv built for your torch.')


def test_version_parsing():
    assert version._parse('2.14.1+cu130') == (2, 14, 1)
    assert version._parse('2.14.0a0+git1234') == (2, 14, 0)


@pytest.mark.slow  # a subprocess
def test_refused_on_import_with_the_sentence_alone(repo_root):
    code = FAKE.format(fake={'torch': '2.0.1'})
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('resnest_mm.version.UnsupportedVersionError: resnest_mm 0.1.0 supports '
                           'torch>=2.1,<2.16, but torch 2.0.1 is installed')
    assert 'AttributeError' not in result.stderr


def test_an_untested_stack_can_be_tried_deliberately(monkeypatch):
    monkeypatch.setenv(version.UNTESTED_ENV, '1')
    assert _check(monkeypatch, {'torch': '2.0.1'}) == ''
