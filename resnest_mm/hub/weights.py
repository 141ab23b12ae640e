"""``weights_file``: what ``load_from``, ``pretrained`` or a checkpoint argument names, as a
local file: a path as it is, a model name or a URL downloaded once and verified.

What mmengine lacks for us: its ``load_from`` takes a path or URL, never a model name, and a
URL goes to ``torch.hub.load_state_dict_from_url`` (unpickled with torch's defaults, no hash
unless the file name carries one). ``CheckpointLoader.register_scheme`` does not fit: our
runner reads every checkpoint through
:func:`resnest_mm.utils.checkpoint_io.load_checkpoint_file`, not through mmengine's loaders,
and a bare name has no scheme to register. So the runner and ``init_model`` call this first.

Mirrors: ``RESNEST_MM_WEIGHTS_MIRROR`` (a base URL such as ``http://host/weights/`` or
``file:///shared/weights/``) serves the model index's files by their file names instead of
their URLs; the index's hashes still decide what is accepted.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple
from urllib.parse import urldefrag, urlparse

from ..utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from .download import cached_download, hash_in_name
from .model_index import has_model, list_models, model_info, models, suggest

MIRROR_ENV = 'RESNEST_MM_WEIGHTS_MIRROR'
_URL_SCHEMES = ('http://', 'https://', 'file://')


def is_url(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(_URL_SCHEMES)


def weights_url(name: str) -> Tuple[str, str, str]:
    """URL, SHA-256 (or prefix) and layout of a named model's weights, mirror applied.

    Raises:
        ExplainedKeyError: no such model.
        ExplainedValueError: the model has no released weights.
    """
    info = model_info(name)
    if not info.weights:
        raise ExplainedValueError(
            f'{info.name} has no released weights (it is a recipe to train); models with '
            f'weights: {", ".join(list_models(with_weights=True))}')
    url = info.weights
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        url = mirror.rstrip('/') + '/' + os.path.basename(urlparse(url).path)
    return url, info.sha256, info.weights_format


def _url_hash(url: str) -> Tuple[str, str]:
    """The URL without a ``#sha256=`` fragment, and the hash it or its file name gives."""
    bare, fragment = urldefrag(url)
    if fragment.startswith('sha256='):
        return bare, fragment[len('sha256='):].lower()
    for entry in models().values():  # a URL of the index: its hash
        if entry.weights == bare:
            return bare, entry.sha256
    found = hash_in_name(bare)
    if found is None:
        raise ExplainedValueError(
            f'{url}: no SHA-256 is known for this URL, so a damaged or replaced file could not '
            'be told apart; append #sha256=<its SHA-256> to the URL (sha256sum prints it), '
            'or download it yourself and give the path')
    return bare, found


def weights_file(spec: Optional[str], progress: bool = True) -> Optional[str]:
    """The local file ``spec`` stands for.

    Args:
        spec: A path (returned as it is, even when it does not exist: the loader names it),
            a model name of the index with weights (``'resnest50'``), or a URL
            (``http(s)://`` / ``file://``) whose SHA-256 is known: from the index, from a
            ``#sha256=HEX`` fragment, or from a torch.hub-style file name
            (``name-<hex prefix>.pth``). None stays None.
        progress: Show a progress bar while downloading. Defaults to True.

    Returns:
        The path of the file (downloads are cached in ``torch.hub.get_dir()/checkpoints``).

    Raises:
        ExplainedFileNotFoundError: a bare word that is neither a file nor a model name.
        ExplainedValueError: a model without weights, or a URL without a known hash.
        WeightsHashError / WeightsDownloadError: the download failed its check or failed.
    """
    if spec is None or not isinstance(spec, str) or os.path.exists(spec):
        return spec
    if is_url(spec):
        url, sha256 = _url_hash(spec)
        return cached_download(url, sha256, progress=progress)
    if has_model(spec):
        url, sha256, _ = weights_url(spec)
        return cached_download(url, sha256, progress=progress)
    if os.sep not in spec and '.' not in spec:  # meant as a name
        raise ExplainedFileNotFoundError(f'{spec!r} is neither a file nor a model name: '
                                         f'{suggest(spec)}')
    return spec
