"""The model index: every entry listed by name, the weights table complete and consistent, the
schema OpenMMLab's (the ``modelindex`` package reads it)."""
import os
import re
import subprocess
import sys

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

from resnest_mm.hub import list_models, model_info
from resnest_mm.models.utils import FORMATS

METAFILE = 'configs/resnest/metafile.yml'


def _entries() -> list:
    with open(METAFILE, encoding='utf-8') as f:
        return yaml.safe_load(f)['Models']


def test_every_model_of_the_metafile_is_listed_by_its_name():
    names = [e['Name'] for e in _entries() if not e['Config'].startswith('configs/benchmarks/')]
    assert sorted(list_models('resnest*')) == sorted(names)
    assert list_models('RESNEST101*') == ['resnest101', 'resnest101e.in1k']
    assert model_info('ResNeSt50').name == 'resnest50'


def test_every_depth_has_the_authors_and_timms_weights_with_hash_and_sourced_top1():
    with_weights = set(list_models(with_weights=True))
    for depth, timm in ((50, 'resnest50d.in1k'), (101, 'resnest101e.in1k'),
                        (200, 'resnest200e.in1k'), (269, 'resnest269e.in1k')):
        for name in (f'resnest{depth}', timm):
            assert name in with_weights
            info = model_info(name)
            assert info.weights.startswith('https://') and info.weights_format in FORMATS
            assert re.fullmatch(r'[0-9a-f]{8}|[0-9a-f]{64}', info.sha256)
            # a prefix is the one torch.hub reads from the file name: both must agree
            assert f'-{info.sha256[:8]}.' in os.path.basename(info.weights)
            assert info.sha256_source and info.metadata['Results Source'].startswith('reference')
            assert 80 < info.top1 < 85
            assert Config.fromfile(info.config).model.backbone.depth == depth
    assert 'zhanghang1989/ResNeSt' in model_info('resnest50').weights
    assert model_info('resnest269e.in1k').top1 == 84.542


def test_the_index_is_openmmlabs_schema():
    from modelindex.load_model_index import load
    index = load('model-index.yml')
    index.build_models_with_collections()
    assert sorted(m.name for m in index.models) == sorted(list_models())


@pytest.mark.parametrize('name', ['resnest101', 'resnest200', 'resnest269'])
def test_deeper_configs_build_the_parameter_count_the_index_gives(name):
    from resnest_mm.registry import MODELS
    info = model_info(name)
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        model = MODELS.build(Config.fromfile(info.config).model)
    assert sum(p.numel() for p in model.parameters()) == info.metadata['Parameters']


def test_an_extra_index_adds_models_and_a_bad_entry_is_one_sentence(tmp_path, monkeypatch):
    index = tmp_path / 'model-index.yml'
    index.write_text('Models:\n  - Name: mine\n    Config: mine.py\n'
                     '    Weights: https://example.org/mine.pth\n    Weights SHA256: xyz\n')
    monkeypatch.setenv('RESNEST_MM_MODEL_INDEX', str(index))
    with pytest.raises(ValueError, match='model mine has Weights but its "Weights SHA256"'):
        list_models()
    index.write_text('Models:\n  - Name: mine\n    Config: mine.py\n')
    assert 'mine' in list_models()
    assert model_info('mine').config == str(tmp_path / 'mine.py')


@pytest.mark.slow
def test_names_are_lazy_attributes_of_the_package(repo_root):
    code = ('import sys, resnest_mm; '
            'assert "resnest_mm.hub" not in sys.modules and "torch" not in sys.modules; '
            'names = resnest_mm.list_models("resnest*"); '
            'assert "resnest50" in names, names; '
            'assert "mmpretrain" not in sys.modules, "listing names built the models"; '
            'assert callable(resnest_mm.get_model); print(len(names))')
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
