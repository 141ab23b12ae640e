"""``cached_download``: a weights file fetched once into torch's hub cache, its SHA-256 checked.

What torch.hub lacks for us: ``load_state_dict_from_url`` unpickles what it downloaded with
torch's defaults (our loads are data only, through
:func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file`), trusts a cached file without
hashing it again, lets several processes of one job download the same file at once, and words
a hash mismatch as ``RuntimeError: invalid hash value``. Here the download itself is torch.hub's
``download_url_to_file`` (a tqdm progress bar; a ``.partial`` temporary file moved to the final
name only when complete and matching, removed otherwise), under a file lock, into
``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), and a cached file is
hashed before it is used.
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
from typing import Optional
from urllib.parse import urlparse

from ..utils.errors import ExplainedRuntimeError, ExplainedValueError
from ..utils.fileio import stream_sha256

# torch.hub's convention: `name-<first hex digits of the SHA-256>.ext`
_NAME_HASH = re.compile(r'-([a-f0-9]{8,64})\.')


class WeightsHashError(ExplainedValueError):
    """A downloaded or cached weights file whose SHA-256 is not the expected one."""


class WeightsDownloadError(ExplainedRuntimeError):
    """A weights file that could not be downloaded."""


def cache_dir() -> str:
    """Where downloaded weights are kept: torch.hub's ``<hub dir>/checkpoints``."""
    import torch.hub
    return os.path.join(torch.hub.get_dir(), 'checkpoints')


def hash_in_name(url: str) -> Optional[str]:
    """The SHA-256 prefix a torch.hub-style file name carries (``resnest50-528c19ca.pth``)."""
    match = _NAME_HASH.search(os.path.basename(urlparse(url).path))
    return match.group(1) if match else None


def sha256_of(path: str) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks."""
    with open(path, 'rb') as f:
        return stream_sha256(f)


def _expected(sha256: str) -> str:
    if len(sha256) == 64:
        return f'be {sha256}'
    return f'start with {sha256} (the {len(sha256)} hex digits its source publishes)'


def cached_download(url: str, sha256: str, progress: bool = True,
                    model_dir: Optional[str] = None) -> str:
    """The local path of the file at ``url``: from the cache, or downloaded once into it.

    Args:
        url: ``http(s)://`` or ``file://`` URL; the file keeps its name in the cache.
        sha256: Its SHA-256 (hex): all 64 digits, or a prefix (checked as a prefix, as
            torch.hub does with the digits in file names).
        progress: Show torch.hub's progress bar on stderr. Defaults to True.
        model_dir: The cache folder. Defaults to :func:`cache_dir`.

    Returns:
        The path of the verified file.

    Raises:
        WeightsHashError: the downloaded file's hash differs (it is deleted, nothing is kept).
        WeightsDownloadError: the server could not be reached or refused the file, or the
            cache folder cannot be written.
    """
    import torch.hub
    from filelock import FileLock
    from mmengine.logging import print_log

    sha256 = sha256.lower()
    folder = os.path.expanduser(model_dir or cache_dir())
    name = os.path.basename(urlparse(url).path)
    if not name:
        raise ExplainedValueError(f'{url} names no file: give the URL of the weights file')
    dst = os.path.join(folder, name)
    # a file is only ever moved into place whole, so a verified one needs no lock (a shared,
    # read-only cache works)
    if os.path.isfile(dst) and sha256_of(dst).startswith(sha256):
        return dst
    try:
        os.makedirs(folder, exist_ok=True)
        lock = FileLock(dst + '.lock')
        lock.acquire()
    except OSError as exc:
        raise WeightsDownloadError(
            f'the weights cache {folder} cannot be written ({exc.strerror or exc}); set '
            'TORCH_HOME to a writable folder, or put the file there yourself '
            '(docs/models.md)') from None
    # several processes of one job (ranks, loader workers) load the same weights at once
    try:
        if os.path.isfile(dst):
            found = sha256_of(dst)
            if found.startswith(sha256):
                return dst
            os.remove(dst)  # not the file of this URL: a damaged or foreign cache entry
            print_log(f'{dst} had SHA-256 {found}, not the expected {sha256}: deleted, '
                      f'downloading {url} again', logger='current', level=logging.WARNING)
        print_log(f'Downloading {url} to {dst}', logger='current')
        try:
            torch.hub.download_url_to_file(url, dst, hash_prefix=sha256, progress=progress)
        except RuntimeError as exc:
            if 'invalid hash value' not in str(exc):
                raise
            got = re.search(r'got "([0-9a-f]+)"', str(exc))
            raise WeightsHashError(
                f'{url} was refused and deleted: its SHA-256 should {_expected(sha256)}, but '
                f'the downloaded file\'s is {got.group(1) if got else "another"}; download '
                'again (a connection cut mid-file ends this way too), and if it repeats, the '
                'file at that URL is not the expected one: use a copy you trust '
                '(RESNEST_MM_WEIGHTS_MIRROR, or the file put in the cache yourself: '
                'docs/models.md).') from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, 'reason', None) or exc
            raise WeightsDownloadError(
                f'{url} could not be downloaded ({reason}); check the network or proxy, or '
                f'put the file at {dst} yourself (offline use: docs/models.md).') from None
    finally:
        lock.release()
    return dst
