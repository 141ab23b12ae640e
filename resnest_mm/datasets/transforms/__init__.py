from .decode_center_crop import DecodeCenterCrop
from .decode_crop import DecodeCrop
from .decode_random_resized_crop import DecodeRandomResizedCrop
from .fast_color_jitter import FastColorJitter
from .fast_lighting import FastLighting
from .load_image import (
    UNREADABLE_DIR_ENV,
    UNREADABLE_LIST_ENV,
    LoadImageRobust,
    record_unreadable,
    write_unreadable_list,
)

__all__ = ['UNREADABLE_DIR_ENV', 'UNREADABLE_LIST_ENV', 'DecodeCenterCrop', 'DecodeCrop',
           'DecodeRandomResizedCrop', 'FastColorJitter', 'FastLighting', 'LoadImageRobust',
           'record_unreadable', 'write_unreadable_list']
