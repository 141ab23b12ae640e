"""Use a trained model: by name, classify images, export it."""
from .inference import inference_model, init_model
from .model_zoo import get_model, list_models

__all__ = ['get_model', 'init_model', 'inference_model', 'list_models']
