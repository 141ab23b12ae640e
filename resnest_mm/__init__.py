"""resnest_mm: ResNeSt training on Ascend NPU, NVIDIA GPU and CPU with MMEngine + MMPretrain.

Importing the package is cheap on purpose: it checks the installed stack's versions (from their
metadata) and nothing else; registries and models load when a config in scope ``resnest_mm`` is
built (mmengine imports ``resnest_mm.registry``) or when a submodule is imported.
``resnest_mm.list_models`` and ``resnest_mm.get_model`` are imported on first use (PEP 562).
"""
from .version import __version__, check_installed

check_installed()

__all__ = ['__version__', 'get_model', 'list_models']


def __getattr__(name: str):
    """``list_models`` (the model index: no torch) and ``get_model``, imported when first
    used."""
    if name == 'list_models':
        from .hub.model_index import list_models
        return list_models
    if name == 'get_model':
        from .apis.model_zoo import get_model
        return get_model
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
