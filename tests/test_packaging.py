"""A non-editable install ships the configs, tools and model index (where mim looks), the model
index describes every config, and a tool whose optional package is missing names the extra."""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

SHIPPED = ['setup.py', 'README.md', 'model-index.yml', 'requirements', 'resnest_mm', 'configs',
           'tools']


@pytest.mark.slow
def test_wheel_carries_configs_tools_and_model_index(repo_root, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for name in SHIPPED:  # a copy: building must not write into the work tree
        path = os.path.join(repo_root, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(path, src / name)
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist'), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel, = glob.glob(str(tmp_path / 'dist' / '*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in glob.glob('configs/**/*.py', recursive=True) + ['configs/resnest/metafile.yml']:
        assert 'resnest_mm/.mim/' + config in names, config
    for tool in ('train.py', 'test.py', 'infer.py', 'dist_train.sh', 'deploy/export.py',
                 'analysis_tools/analyze_logs.py', 'analysis_tools/get_flops.py'):
        assert 'resnest_mm/.mim/tools/' + tool in names, tool
    assert 'resnest_mm/.mim/model-index.yml' in names
    assert 'resnest_mm/apis/inference.py' in names

    # As mim runs them: the installed copy's tool on the installed copy's config, elsewhere.
    site = tmp_path / 'site'
    zipfile.ZipFile(wheel).extractall(site)
    mim = site / 'resnest_mm' / '.mim'
    run = ('import runpy, sys, resnest_mm; print(resnest_mm.__file__); '
           'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')
    proc = subprocess.run([sys.executable, '-c', run,
                           str(mim / 'tools' / 'analysis_tools' / 'get_flops.py'),
                           str(mim / 'configs' / 'resnest50_1xb32_digits.py')],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(site)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(str(site))  # the installed copy, not this checkout
    assert 'parameters: 25.455M (25,454,730)' in proc.stdout  # _base_ files resolved there

    # Its metadata: the supported torch range, and no mmcv beside the user's own.
    meta = next(n for n in names if n.endswith('.dist-info/METADATA'))
    requires = [line for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
                if line.startswith('Requires-Dist:')]
    assert 'Requires-Dist: torch<2.16,>=2.1' in requires, requires
    assert not [r for r in requires if 'mmcv' in r and 'extra ==' not in r], requires
    # A shipped tool whose optional package is missing names the extra (no traceback).
    hide = 'import sys; sys.modules["sklearn"] = None; '  # as if scikit-learn were not installed
    proc = subprocess.run([sys.executable, '-c', hide + run,
                           str(mim / 'tools' / 'dataset_converters' / 'make_digits.py'),
                           str(tmp_path / 'digits')],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(site)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "pip install 'resnest_mm[digits]'" in proc.stderr and 'Traceback' not in proc.stderr

    # Names work there too: the index and the configs it names are the installed copy's.
    by_name = ('import os, resnest_mm; from resnest_mm.hub import model_info; '
             'info = model_info("resnest101"); assert os.path.isfile(info.config); '
             'assert "resnest50" in resnest_mm.list_models("resnest*"); print(info.config)')
    proc = subprocess.run([sys.executable, '-c', by_name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(site)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(str(mim / 'configs' / 'resnest'))


def test_model_index_describes_every_config(repo_root):
    index = yaml.safe_load(open(os.path.join(repo_root, 'model-index.yml')))
    models = []
    for meta in index['Import']:
        models += yaml.safe_load(open(os.path.join(repo_root, meta)))['Models']
    described = {m['Config'] for m in models}
    configs = {p for p in glob.glob('configs/**/*.py', recursive=True) if '_base_' not in p}
    assert described == configs
    for model in models:
        assert model['In Collection'] == 'ResNeSt'
        if 'Weights' not in model:  # a recipe is named after its config, weights after theirs
            assert os.path.splitext(os.path.basename(model['Config']))[0] == model['Name']
        if model.get('Results'):  # every result says where it comes from (reference or ours)
            assert 'Results Source' in model['Metadata'], model['Name']
    in1k = next(m for m in models if m['Name'] == 'resnest50_8xb128_in1k')
    assert in1k['Metadata']['Parameters'] == 27_483_240
    assert in1k['Results'][0]['Metrics']['Top 1 Accuracy'] == 78.808  # the seed's README


def _extras_of_setup_py(repo_root) -> dict:
    """setup.py's extras_require keys, read without running it."""
    import ast
    tree = ast.parse(open(os.path.join(repo_root, 'setup.py')).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', None) == 'setup')
    extras = next(k.value for k in call.keywords if k.arg == 'extras_require')
    return {key.value: value for key, value in zip(extras.keys, extras.values)}


def test_every_extra_a_refusal_names_exists(repo_root):
    from resnest_mm.utils.extras import EXTRAS
    extras = _extras_of_setup_py(repo_root)
    for extra, distribution in EXTRAS.values():
        assert extra in extras, extra
        assert distribution in ast_strings(extras[extra]), (extra, distribution)
    assert 'mmcv-lite' in extras  # the path of a fresh environment (resnest_mm/version.py)


def ast_strings(node) -> list:
    import ast
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)]


def _hide(monkeypatch, package: str) -> None:
    """As if ``package`` were not installed: importing it or a submodule raises ImportError
    (also where an earlier test imported them)."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + '.')]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.parametrize('module', ['sklearn', 'onnx', 'onnxscript', 'onnxruntime',
                                    'tensorboard'])
def test_a_missing_optional_package_names_its_extra(monkeypatch, module):
    from resnest_mm.utils.errors import ExplainedImportError
    from resnest_mm.utils.extras import EXTRAS, require
    _hide(monkeypatch, module)
    extra, distribution = EXTRAS[module]
    with pytest.raises(ExplainedImportError) as info:
        require(module, 'the feature')
    assert str(info.value) == (f'the feature needs the {distribution} package, which is not '
                               f"installed: pip install 'resnest_mm[{extra}]' (or pip install "
                               f'{distribution}).')


def test_make_digits_without_scikit_learn_names_the_extra(monkeypatch, tmp_path, capsys):
    import runpy
    _hide(monkeypatch, 'sklearn')
    monkeypatch.setattr(sys, 'argv', ['make_digits.py', str(tmp_path / 'digits')])
    with pytest.raises(SystemExit) as info:
        runpy.run_path('tools/dataset_converters/make_digits.py', run_name='__main__')
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        'tools/dataset_converters/make_digits.py: error: the digits demo data '
        '(tools/dataset_converters/make_digits.py) needs the scikit-learn package, which is not '
        "installed: pip install 'resnest_mm[digits]' (or pip install scikit-learn).\n")
    assert not (tmp_path / 'digits').exists()
