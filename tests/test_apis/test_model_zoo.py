"""Models by name: ``get_model(NAME, pretrained=True)`` and ``load_from=NAME`` fetch the listed
weights from a real HTTP server on 127.0.0.1 (never the internet), once, verify their SHA-256,
convert the authors' layout and give the source network's logits."""
import hashlib
import os

import pytest
import resnest.torch as original
import torch
from mmengine.config import Config

import resnest_mm
from resnest_mm.hub import WeightsHashError
from tests.helpers.weights_server import WeightsServer

NAME = 'resnest50-local'


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """The authors' ResNeSt-50 (seeded random weights) saved as their release files are."""
    torch.manual_seed(0)
    net = original.resnest50().eval()
    path = tmp_path_factory.mktemp('source') / 'resnest50-local.pth'
    torch.save(net.state_dict(), path)
    data = path.read_bytes()
    return net, data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(source, tmp_path, monkeypatch):
    """The source file on a local server, listed as NAME by an extra model index."""
    net, data, sha = source
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    with WeightsServer({'/resnest50-local.pth': data}) as server:
        index = tmp_path / 'model-index.yml'
        index.write_text(
            'Models:\n'
            f'  - Name: {NAME}\n'
            f'    Config: {os.path.abspath("configs/resnest50_8xb128_in1k.py")}\n'
            f'    Weights: {server.url("/resnest50-local.pth")}\n'
            f'    Weights SHA256: {sha}\n'
            '    Weights Format: official\n')
        monkeypatch.setenv('RESNEST_MM_MODEL_INDEX', str(index))
        yield net, server


@pytest.mark.slow
def test_get_model_downloads_once_verifies_converts_and_matches_the_source(served):
    net, server = served
    assert NAME in resnest_mm.list_models('resnest*')
    model = resnest_mm.get_model(NAME, pretrained=True, device='cpu')
    again = resnest_mm.get_model(NAME.upper(), pretrained=True, device='cpu')
    assert server.requests['/resnest50-local.pth'] == 1  # the second one hit the cache
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = net(x)
        for m in (model, again):
            assert torch.equal(m(x, mode='tensor'), expected)


@pytest.mark.slow
def test_load_from_a_model_name_in_the_runner(served, tmp_path):
    """The fine-tune config as shipped (load_from='resnest50') with the name pointed at the
    local entry: the runner downloads, converts, drops the 1000-class head, keeps the rest."""
    from resnest_mm.frontends.cli import build_runner

    net, server = served
    cfg = Config.fromfile('configs/resnest50_1xb128-finetune_custom.py')
    assert cfg.load_from == 'resnest50'
    cfg.load_from = NAME
    cfg.work_dir = str(tmp_path / 'work')
    runner = build_runner(cfg)
    runner.load_or_resume()
    assert server.requests['/resnest50-local.pth'] == 1
    own = runner.model.state_dict()
    for key, value in net.state_dict().items():
        if not key.startswith('fc.'):
            assert torch.equal(own['backbone.' + key], value), key


def test_a_listed_name_whose_download_has_another_hash_is_refused(tmp_path, monkeypatch):
    """RESNEST_MM_WEIGHTS_MIRROR serves the index's files by name; the index's hash decides:
    a file of that name with other bytes is refused in one sentence and not kept."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url = resnest_mm.hub.model_info('resnest50').weights
    name = os.path.basename(url)
    with WeightsServer({f'/{name}': b'not the authors weights' * 100}) as server:
        monkeypatch.setenv('RESNEST_MM_WEIGHTS_MIRROR', server.url('/'))
        with pytest.raises(WeightsHashError) as info:
            resnest_mm.get_model('resnest50', pretrained=True, device='cpu')
        assert server.requests[f'/{name}'] == 1
    message = str(info.value)
    assert 'should start with 528c19ca' in message and server.url(f'/{name}') in message
    assert not os.path.exists(tmp_path / 'torch' / 'hub' / 'checkpoints' / name)


def test_names_that_are_not_models_or_have_no_weights_are_one_sentence():
    with pytest.raises(KeyError, match="did you mean resnest50"):
        resnest_mm.get_model('resnest5')
    with pytest.raises(ValueError, match='resnest50_1xb128_in1k has no released weights'):
        resnest_mm.get_model('resnest50_1xb128_in1k', pretrained=True)


def test_init_model_takes_a_model_name():
    from resnest_mm.apis import init_model
    model = init_model('resnest50_1xb32_digits', device='cpu')
    assert model.head.fc.out_features == 10
    assert model.cfg.filename.endswith('resnest50_1xb32_digits.py')
