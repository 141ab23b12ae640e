"""resnest_mm: ResNeSt training on Ascend NPU, NVIDIA GPU and CPU with MMEngine + MMPretrain.

Importing the package is cheap on purpose: it checks the installed stack's versions (from their
metadata) and nothing else; registries and models load when a config in scope ``resnest_mm`` is
built (mmengine imports ``resnest_mm.registry``) or when a submodule is imported.
"""
from .version import __version__, check_installed

check_installed()

__all__ = ['__version__']
