"""resnest_mm's version, and the versions of the stack it supports.

Checked on ``import resnest_mm`` from the installed distributions' metadata (nothing is imported
for it), so an unsupported torch or mmengine is named in one sentence instead of failing later
with an ``AttributeError`` deep inside. What differs *inside* the supported ranges is
:mod:`resnest_mm.compat`'s business: a feature an older torch lacks is refused when it is used.

The ranges are what CI runs: the whole suite on ``requirements/constraints.txt`` (torch 2.14),
and a fast subset on the oldest and the newest torch (``make test-torch2.1``,
``make test-torch2.15``). torch 2.1 through 2.14 are the torch_npu lines.
"""
from __future__ import annotations

import os
import re
from importlib import metadata
from typing import Dict, Optional, Tuple

__version__ = '0.1.0'

Version = Tuple[int, ...]
# distribution (or alternatives) -> [lowest supported, first unsupported).
# requirements/runtime.txt keeps the same ranges (tests/test_version.py checks that they agree).
SUPPORTED: Dict[Tuple[str, ...], Tuple[Version, Version]] = {
    ('torch', ): ((2, 1), (2, 16)),
    ('torchvision', ): ((0, 16), (0, 30)),
    ('mmengine', 'mmengine-lite'): ((0, 10, 0), (0, 11)),
    ('mmpretrain', ): ((1, 0), (2, )),
}
# One of these, whichever the user has: both install the same ``mmcv/`` package, so resnest_mm
# requires neither (pip would add mmcv-lite beside a full mmcv) and its ``mmcv-lite`` extra
# brings the light one into a fresh environment. The range is mmpretrain's own import check.
MMCV: Tuple[Tuple[str, ...], Tuple[Version, Version]] = (('mmcv', 'mmcv-lite'), ((2, 0), (2, 4)))


class UnsupportedVersionError(ImportError):
    """An installed package outside the versions resnest_mm supports, or a missing one."""

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


def requirement(name: str, low: Version, high: Version) -> str:
    """The pip requirement of a range: ``torch>=2.1,<2.16``."""
    return f'{name}>={_dotted(low)},<{_dotted(high)}'


UNTESTED_ENV = 'RESNEST_MM_ALLOW_UNTESTED'


def check_installed() -> None:
    """Refuse an installed stack outside :data:`SUPPORTED`, or one with neither mmcv nor
    mmcv-lite (any other missing package is left to the import that needs it).
    ``RESNEST_MM_ALLOW_UNTESTED=1`` lets a deliberate trial on another stack through.

    Raises:
        UnsupportedVersionError: naming the package, the version found, the range needed and
            the pip line that fixes it.
    """
    mmcv_names, (mmcv_low, mmcv_high) = MMCV
    if _installed(mmcv_names) is None:
        raise UnsupportedVersionError(
            f'resnest_mm needs mmcv or mmcv-lite (>={_dotted(mmcv_low)},<{_dotted(mmcv_high)}) '
            "and neither is installed: pip install 'resnest_mm[mmcv-lite]', or install the full "
            'mmcv built for your torch.')
    if os.environ.get(UNTESTED_ENV) == '1':
        return
    for names, (low, high) in [*SUPPORTED.items(), MMCV]:
        found = _installed(names)
        if found is None:
            continue
        name, text = found
        if not low <= _parse(text) < high:
            wanted = requirement(name, low, high)
            raise UnsupportedVersionError(
                f'resnest_mm {__version__} supports {wanted}, but {name} {text} is installed: '
                f"install a supported one (pip install '{wanted}'), or set {UNTESTED_ENV}=1 to "
                'try this one at your own risk.')
