"""resnest_mm: ResNeSt training on Ascend NPU, NVIDIA GPU and CPU with MMEngine + MMPretrain.

Importing the package is cheap on purpose: registries, models and the compat fixes load when a
config in scope ``resnest_mm`` is built (mmengine imports ``resnest_mm.registry``) or when a
submodule is imported.
"""
from .version import __version__

__all__ = ['__version__']
