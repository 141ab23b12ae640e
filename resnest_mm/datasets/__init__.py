"""Data: robust image loading, the folder rule, ImageNet preparation and the demo data set."""
from . import device_decode  # noqa: F401  (registers ReadForDeviceDecode and its preprocessor)
from .augment_on_device_preprocessor import AugmentOnDevicePreprocessor
from .decode import ImageTooLargeError, UnreadableImageError, decode_image
from .digits import write_digits
from .folder_datasets import CustomDataset, ImageNet
from .samplers import ResumableSampler
from .transforms import LoadImageRobust

__all__ = ['AugmentOnDevicePreprocessor', 'CustomDataset', 'ImageNet', 'ImageTooLargeError',
           'LoadImageRobust', 'ResumableSampler', 'UnreadableImageError', 'decode_image',
           'write_digits']
