"""resnest_mm's version, and the versions of the stack it is tested with.

Checked on ``import resnest_mm`` from the installed distributions' metadata (nothing is imported
for it), so an unsupported torch or mmengine is named in one sentence instead of failing later
with an ``AttributeError`` deep inside (``torch.serialization.safe_globals`` arrived in torch 2.5,
the Runner methods ``ResNeStRunner`` overrides are mmengine 0.10's ...).
"""
from __future__ import annotations

import os
import re
from importlib import metadata
from typing import Dict, Optional, Tuple

__version__ = '0.1.0'

Version = Tuple[int, ...]
# distribution (or alternatives) -> [lowest supported, first unsupported): what the test suite
# runs on (requirements/constraints.txt) and the Ascend pairing (torch 2.14.0 + torch_npu 2.14.0).
SUPPORTED: Dict[Tuple[str, ...], Tuple[Version, Version]] = {
    ('torch', ): ((2, 14), (2, 15)),
    ('torchvision', ): ((0, 29), (0, 30)),
    ('mmengine', 'mmengine-lite'): ((0, 10, 7), (0, 11)),
    ('mmcv-lite', 'mmcv'): ((2, 2), (2, 3)),
    ('mmpretrain', ): ((1, 2), (1, 3)),
}


class UnsupportedVersionError(ImportError):
    """An installed package outside the versions resnest_mm is tested with."""

    def __str__(self) -> str:
        return ' '.join(str(arg) for arg in self.args)


def _parse(text: str) -> Version:
    """(2, 14, 1) from '2.14.1+cu130', '2.14.0a0+git123', '0.10.7'."""
    return tuple(int(part) for part in re.findall(r'\d+', text.split('+')[0])[:3])


def _dotted(version: Version) -> str:
    return '.'.join(map(str, version))


def _installed(names: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


UNTESTED_ENV = 'RESNEST_MM_ALLOW_UNTESTED'


def check_installed() -> None:
    """Refuse an installed stack outside :data:`SUPPORTED` (a missing package is left to the
    import that needs it). ``RESNEST_MM_ALLOW_UNTESTED=1`` lets a deliberate trial on another
    stack through (``benchmarks/gpu_check.sh`` on a GPU machine's own torch).

    Raises:
        UnsupportedVersionError: naming the package, the version found and the range needed.
    """
    if os.environ.get(UNTESTED_ENV) == '1':
        return
    for names, (low, high) in SUPPORTED.items():
        found = _installed(names)
        if found is None:
            continue
        name, text = found
        if not low <= _parse(text) < high:
            raise UnsupportedVersionError(
                f'resnest_mm {__version__} needs {name}>={_dotted(low)},<{_dotted(high)} (the '
                f'versions it is tested with), but {name} {text} is installed: install the '
                'pinned stack (pip install -c requirements/constraints.txt -e ., or make venv), '
                f'or set {UNTESTED_ENV}=1 to try this one at your own risk.')
