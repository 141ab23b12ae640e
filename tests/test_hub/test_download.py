"""Weights downloads against a real HTTP server on 127.0.0.1: a match, a hash mismatch, a cut
connection, a cache hit, a damaged cache entry; nothing partial is ever left under the final
name."""
import hashlib
import os

import pytest
import torch

from resnest_mm.hub import WeightsHashError, cached_download, weights_file
from tests.helpers.weights_server import WeightsServer


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / 'src.pth'
    torch.save({'w': torch.arange(50000, dtype=torch.float32)}, path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch.hub.get_dir() in tmp_path, through TORCH_HOME as users set it."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    assert torch.hub.get_dir() == str(tmp_path / 'torch' / 'hub')
    return tmp_path / 'torch' / 'hub' / 'checkpoints'


def _left(folder) -> list:
    return sorted(n for n in os.listdir(folder) if not n.endswith('.lock'))


def test_match_downloads_once_into_the_hub_cache_and_hits_the_cache_after(payload, hub):
    data, sha = payload
    with WeightsServer({'/w.pth': data}) as server:
        path = cached_download(server.url('/w.pth'), sha, progress=False)
        again = cached_download(server.url('/w.pth'), sha[:8], progress=False)
        assert server.requests['/w.pth'] == 1  # the second call is a cache hit
    assert path == again == str(hub / 'w.pth')
    assert open(path, 'rb').read() == data
    assert _left(hub) == ['w.pth']


def test_hash_mismatch_is_refused_in_one_sentence_and_nothing_is_kept(payload, hub):
    data, sha = payload
    wrong = ('0' if sha[0] != '0' else '1') + sha[1:]
    with WeightsServer({'/w.pth': data}) as server:
        url = server.url('/w.pth')
        with pytest.raises(WeightsHashError) as info:
            cached_download(url, wrong, progress=False)
    message = str(info.value)
    assert url in message and wrong in message and sha in message
    assert 'refused and deleted' in message and '\n' not in message
    assert _left(hub) == []  # no w.pth, no .partial


def test_a_connection_cut_mid_file_leaves_nothing_and_the_next_try_succeeds(payload, hub):
    data, sha = payload
    with WeightsServer({'/w.pth': data}, cut={'/w.pth'}) as server:
        with pytest.raises(WeightsHashError, match='cut mid-file'):
            cached_download(server.url('/w.pth'), sha, progress=False)
        assert server.requests['/w.pth'] == 1
    assert _left(hub) == []
    with WeightsServer({'/w.pth': data}) as server:
        path = cached_download(server.url('/w.pth'), sha, progress=False)
    assert hashlib.sha256(open(path, 'rb').read()).hexdigest() == sha


def test_a_damaged_cache_entry_is_replaced_not_used(payload, hub):
    data, sha = payload
    os.makedirs(hub)
    (hub / 'w.pth').write_bytes(data[:100])
    with WeightsServer({'/w.pth': data}) as server:
        path = cached_download(server.url('/w.pth'), sha, progress=False)
        assert server.requests['/w.pth'] == 1
    assert open(path, 'rb').read() == data


def test_a_url_gets_its_hash_from_a_fragment_or_a_torch_hub_file_name(payload, hub):
    data, sha = payload
    files = {'/plain.pth': data, f'/named-{sha[:8]}.pth': data}
    with WeightsServer(files) as server:
        assert weights_file(server.url('/plain.pth') + f'#sha256={sha}', progress=False) == \
            str(hub / 'plain.pth')
        assert weights_file(server.url(f'/named-{sha[:8]}.pth'), progress=False) == \
            str(hub / f'named-{sha[:8]}.pth')
        with pytest.raises(ValueError, match='no SHA-256 is known'):
            weights_file(server.url('/other.pth'), progress=False)
        assert server.requests['/other.pth'] == 0  # refused before any request


def test_a_missing_file_on_the_server_is_one_sentence(hub):
    with WeightsServer({}) as server:
        with pytest.raises(RuntimeError, match='could not be downloaded .*Not Found'):
            cached_download(server.url('/gone.pth'), 'ab' * 4, progress=False)


def test_a_mirror_folder_serves_the_index_files_by_name_offline(payload, hub, tmp_path,
                                                                 monkeypatch):
    """RESNEST_MM_WEIGHTS_MIRROR=file:///folder/ (a shared disk on a cluster without internet):
    the listed URL is never asked, the index's hash still decides."""
    data, sha = payload
    index = tmp_path / 'model-index.yml'
    index.write_text('Models:\n  - Name: mirrored\n    Config: x.py\n'
                     '    Weights: https://unreachable.invalid/weights/mirrored.pth\n'
                     f'    Weights SHA256: {sha}\n    Weights Format: official\n')
    monkeypatch.setenv('RESNEST_MM_MODEL_INDEX', str(index))
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / 'mirrored.pth').write_bytes(data)
    monkeypatch.setenv('RESNEST_MM_WEIGHTS_MIRROR', mirror.as_uri() + '/')
    assert weights_file('mirrored', progress=False) == str(hub / 'mirrored.pth')
    (mirror / 'mirrored.pth').write_bytes(data[::-1])
    os.remove(hub / 'mirrored.pth')
    with pytest.raises(WeightsHashError):
        weights_file('mirrored', progress=False)


def test_a_cache_that_cannot_be_written_serves_its_verified_files_and_says_so_otherwise(
        payload, hub):
    """A shared cache others filled: a verified file is used without writing anything (no lock);
    where a download would have to write and cannot, one sentence names TORCH_HOME. (Lock
    paths taken by folders stand in for a read-only folder, which root would write anyway.)"""
    data, sha = payload
    os.makedirs(hub / 'w.pth.lock')
    os.makedirs(hub / 'other.pth.lock')
    (hub / 'w.pth').write_bytes(data)
    assert cached_download('http://127.0.0.1:9/w.pth', sha, progress=False) == \
        str(hub / 'w.pth')
    with pytest.raises(RuntimeError, match='cannot be written .*TORCH_HOME'):
        cached_download('http://127.0.0.1:9/other.pth', sha, progress=False)
