"""The model index: every named model of resnest_mm, read from ``model-index.yml``.

What mmpretrain lacks for us: its ``ModelHub`` reads only mmpretrain's own index (our names are
unknown to it), needs the ``modelindex`` package, and its ``Weights`` entries carry no hash (it
trusts the hash prefix of mmpretrain's file names). Here the index is OpenMMLab's format
(``model-index.yml`` imports ``configs/resnest/metafile.yml``: ``Name``, ``Config``,
``Metadata``, ``Results``, ``Weights``), extended by three keys per weights entry:

* ``Weights SHA256``: the file's SHA-256 as its source publishes it: 64 hex digits, or a
  prefix (the 8 digits torch.hub file names carry), checked as such;
* ``Weights SHA256 Source``: where that hash was read;
* ``Weights Format``: the layout of the file (``official`` for the ResNeSt authors' and timm's),
  converted to ours at load.

The index is found beside the package: ``resnest_mm/.mim/`` in an installed wheel (setup.py
copies it there with the configs), the repository root in an editable checkout. Your own
models join it without editing the package: ``RESNEST_MM_MODEL_INDEX`` names more
``model-index.yml`` files (separated by ``os.pathsep``), each read as ours (config paths
relative to its folder, or absolute).
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..utils.errors import ExplainedFileNotFoundError, ExplainedKeyError, ExplainedValueError

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDEX_NAME = 'model-index.yml'
EXTRA_INDEX_ENV = 'RESNEST_MM_MODEL_INDEX'
_HEX = re.compile(r'^[0-9a-f]{8,64}$')


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model index.

    Attributes:
        name: The model's name (``list_models`` lists it).
        config: Absolute path of its config file.
        weights: URL of its released weights, or None.
        sha256: The weights' SHA-256 (hex, lower case) or a prefix of it; None without weights.
        sha256_source: Where the hash was read.
        weights_format: Layout of the weights file (a :data:`resnest_mm.models.utils.FORMATS`
            name).
        top1: ImageNet-1k top-1 the source reports, or None.
        metadata: The entry's ``Metadata`` as written.
    """

    name: str
    config: str
    weights: Optional[str] = None
    sha256: Optional[str] = None
    sha256_source: Optional[str] = None
    weights_format: Optional[str] = None
    top1: Optional[float] = None
    metadata: Dict = field(default_factory=dict, compare=False)


def index_root() -> str:
    """The folder holding ``model-index.yml`` (its config paths are relative to it)."""
    for root in (os.path.join(_PACKAGE, '.mim'), os.path.dirname(_PACKAGE)):
        if os.path.isfile(os.path.join(root, INDEX_NAME)):
            return root
    raise ExplainedFileNotFoundError(
        f'{INDEX_NAME} was found neither in {os.path.join(_PACKAGE, ".mim")} nor in '
        f'{os.path.dirname(_PACKAGE)}: reinstall resnest_mm (pip install .), whose wheel ships '
        'it with the configs')


def _read_yaml(path: str):
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ExplainedFileNotFoundError(f'{path}, imported by the model index, does not '
                                         'exist') from None
    except yaml.YAMLError as exc:
        raise ExplainedValueError(f'{path} is not valid YAML ({exc})') from None


def _top1(entry: dict) -> Optional[float]:
    for result in entry.get('Results') or []:
        if result.get('Dataset') == 'ImageNet-1k':
            value = (result.get('Metrics') or {}).get('Top 1 Accuracy')
            if value is not None:
                return float(value)
    return None


def _parse(entry: dict, root: str, source: str) -> ModelInfo:
    name = entry.get('Name')
    if not isinstance(name, str) or not name:
        raise ExplainedValueError(f'{source}: a model entry has no Name')
    config = entry.get('Config')
    if not isinstance(config, str):
        raise ExplainedValueError(f'{source}: model {name} has no Config')
    weights, sha256 = entry.get('Weights'), entry.get('Weights SHA256')
    if weights is not None:
        sha256 = str(sha256 or '').lower()
        if not _HEX.match(sha256):
            raise ExplainedValueError(
                f'{source}: model {name} has Weights but its "Weights SHA256" is '
                f'{entry.get("Weights SHA256")!r}; give the SHA-256 (64 hex digits) or the '
                'prefix its source publishes (at least 8)')
        if not entry.get('Weights Format'):
            raise ExplainedValueError(f'{source}: model {name} has Weights but no '
                                      '"Weights Format" (official, timm, mmpretrain, resnest_mm)')
    return ModelInfo(name=name, config=os.path.normpath(os.path.join(root, config)),
                     weights=weights, sha256=sha256 if weights else None,
                     sha256_source=entry.get('Weights SHA256 Source'),
                     weights_format=entry.get('Weights Format'), top1=_top1(entry),
                     metadata=dict(entry.get('Metadata') or {}))


@functools.cache
def _load(*indexes: str) -> Dict[str, ModelInfo]:
    models: Dict[str, ModelInfo] = {}
    for index_path in indexes:
        root = os.path.dirname(os.path.abspath(index_path))
        index = _read_yaml(index_path) or {}
        # a metafile itself (Models at the top) or an index importing metafiles
        metafiles = [os.path.join(root, i) for i in index.get('Import') or []] \
            if 'Import' in index else [index_path]
        for path in metafiles:
            for entry in (_read_yaml(path) or {}).get('Models') or []:
                info = _parse(entry, root, path)
                if info.name.lower() in models:
                    raise ExplainedValueError(f'{path}: the model name {info.name} is already '
                                              f'used by {models[info.name.lower()].config}')
                models[info.name.lower()] = info
    return models


def models() -> Dict[str, ModelInfo]:
    """Every model of the index (and of ``RESNEST_MM_MODEL_INDEX``'s), by lower-case name."""
    extra = [p for p in os.environ.get(EXTRA_INDEX_ENV, '').split(os.pathsep) if p]
    for path in extra:
        if not os.path.isfile(path):
            raise ExplainedFileNotFoundError(f'{EXTRA_INDEX_ENV} names {path}, which does not '
                                             'exist')
    return _load(os.path.join(index_root(), INDEX_NAME), *extra)


def list_models(pattern: Optional[str] = None, with_weights: bool = False) -> List[str]:
    """Names of the models in the index, sorted.

    Args:
        pattern: A shell-style pattern (``fnmatch``, case-insensitive), e.g. ``'resnest101*'``.
            None lists all. Defaults to None.
        with_weights: Only models with released weights (``pretrained=True`` works). Defaults
            to False.

    Returns:
        The names, as the index spells them.
    """
    names = [m.name for m in models().values() if m.weights or not with_weights]
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]
    return sorted(names)


def has_model(name: str) -> bool:
    """Whether ``name`` is a model of the index (case-insensitive)."""
    return isinstance(name, str) and name.lower() in models()


def model_info(name: str) -> ModelInfo:
    """The index entry of ``name`` (case-insensitive).

    Raises:
        ExplainedKeyError: no such model (the message names the closest ones).
    """
    found = models().get(str(name).lower())
    if found is None:
        raise ExplainedKeyError(f'{name!r} is not a model of resnest_mm: {suggest(name)}')
    return found


def suggest(name: str) -> str:
    """'did you mean a, b? ...' for an unknown name: the closest names of the index."""
    close = difflib.get_close_matches(str(name).lower(), list(models()), n=3, cutoff=0.5)
    hint = f'did you mean {", ".join(models()[c].name for c in close)}? ' if close else ''
    return hint + 'resnest_mm.list_models() lists them all'

