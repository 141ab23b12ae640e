"""The optional packages some tools need, each named by the pip extra that brings it.

resnest_mm's own requirements are the training stack; a tool that needs more (the demo data's
scikit-learn, ONNX export, TensorBoard) asks :func:`require` when it is used, so an install
without the extra gets one sentence naming ``pip install 'resnest_mm[EXTRA]'`` instead of a
``ModuleNotFoundError``. setup.py's ``extras_require`` holds the same extras
(tests/test_packaging.py checks that they agree).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ExplainedImportError

#: import name -> (pip extra of resnest_mm, the distribution it installs)
EXTRAS = {
    'sklearn': ('digits', 'scikit-learn'),
    'onnx': ('export', 'onnx'),
    'onnxscript': ('export', 'onnxscript'),
    'onnxruntime': ('export', 'onnxruntime'),
    'tensorboard': ('tensorboard', 'tensorboard'),
}


def require(module: str, feature: str) -> ModuleType:
    """Import an optional package, or say which extra brings it.

    Args:
        module: The import name, a key of :data:`EXTRAS` (``'sklearn'``, a submodule such as
            ``'sklearn.datasets'`` too).
        feature: What the user asked for, as they would name it (``'--tensorboard'``).

    Returns:
        The imported module.

    Raises:
        ExplainedImportError: the package is not installed, in one sentence naming the extra.
    """
    extra, distribution = EXTRAS[module.split('.')[0]]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExplainedImportError(
            f"{feature} needs the {distribution} package, which is not installed: pip install "
            f"'resnest_mm[{extra}]' (or pip install {distribution}).") from None
