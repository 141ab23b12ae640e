from .decode_center_crop import DecodeCenterCrop
from .decode_crop import DecodeCrop
from .decode_random_resized_crop import DecodeRandomResizedCrop
from .fast_color_jitter import FastColorJitter
from .fast_lighting import FastLighting
from .load_image import LoadImageRobust
from .pack_for_device import PackForDevice

__all__ = ['DecodeCenterCrop', 'DecodeCrop', 'DecodeRandomResizedCrop', 'FastColorJitter',
           'FastLighting', 'LoadImageRobust', 'PackForDevice']
