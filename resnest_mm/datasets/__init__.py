"""Data: robust image loading, ImageNet preparation and the demo data set."""
from .decode import UnreadableImageError, decode_image
from .digits import write_digits
from .transforms import LoadImageRobust

__all__ = ['LoadImageRobust', 'UnreadableImageError', 'decode_image', 'write_digits']
