"""Data: robust image loading, ImageNet preparation and the demo data set."""
from .decode import UnreadableImageError, decode_image
from .digits import write_digits
from .samplers import ResumableSampler
from .transforms import LoadImageRobust

__all__ = ['LoadImageRobust', 'ResumableSampler', 'UnreadableImageError', 'decode_image',
           'write_digits']
