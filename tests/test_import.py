"""Importing resnest_mm is cheap and never touches torch_npu or apex."""
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_import_has_no_npu_or_apex_and_no_torch(repo_root):
    code = ('import sys, resnest_mm; '
            'assert "torch" not in sys.modules, "import resnest_mm pulled in torch"; '
            'import resnest_mm.registry, resnest_mm.models; '
            'bad = [m for m in ("torch_npu", "apex") if m in sys.modules]; '
            'assert not bad, bad; print(resnest_mm.__version__)')
    result = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_config_type_resolves_in_our_scope():
    from mmengine.registry import DefaultScope

    from resnest_mm.registry import DATASETS, METRICS, MODELS, TRANSFORMS
    with DefaultScope.overwrite_default_scope('resnest_mm'):
        for registry, name in [(MODELS, 'ImageClassifier'), (MODELS, 'LinearClsHead'),
                               (MODELS, 'GlobalAveragePooling'), (MODELS, 'ResNeSt'),
                               (DATASETS, 'CustomDataset'), (DATASETS, 'ImageNet'),
                               (TRANSFORMS, 'RandomResizedCrop'), (TRANSFORMS, 'PackInputs'),
                               (METRICS, 'Accuracy')]:
            assert registry.get(name) is not None, name
        assert MODELS.get('ResNeSt').__module__ == 'resnest_mm.models.backbones.resnest'
