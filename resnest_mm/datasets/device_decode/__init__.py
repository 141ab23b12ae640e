"""Decoding on the accelerator: the workers read, the data preprocessor decodes."""
from .config import apply_decode_on_device
from .decode_on_device_preprocessor import DecodeOnDevicePreprocessor
from .read_for_device_decode import DEVICE_META_KEYS, ReadForDeviceDecode

__all__ = ['DEVICE_META_KEYS', 'DecodeOnDevicePreprocessor', 'ReadForDeviceDecode',
           'apply_decode_on_device']
