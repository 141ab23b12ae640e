"""Models and weights by name: the model index, and verified downloads into torch's hub cache.

Imports only :mod:`resnest_mm.utils` (the runner, the APIs and the tools use it).
"""
from .download import WeightsDownloadError, WeightsHashError, cache_dir, cached_download
from .model_index import ModelInfo, has_model, list_models, model_info
from .weights import MIRROR_ENV, weights_file, weights_url

__all__ = [
    'MIRROR_ENV', 'ModelInfo', 'WeightsDownloadError', 'WeightsHashError', 'cache_dir',
    'cached_download', 'has_model', 'list_models', 'model_info', 'weights_file', 'weights_url'
]
