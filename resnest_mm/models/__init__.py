"""Models: the ResNeSt backbone, its layers, batch augments and weight conversion."""
from .backbones import ResNeSt, ResNeStBottleneck
from .batch_augments import NpuMixup
from .layers import SplitAttentionConv2d
from .utils import convert_checkpoint, convert_state_dict, detect_format

__all__ = ['NpuMixup', 'ResNeSt', 'ResNeStBottleneck', 'SplitAttentionConv2d',
           'convert_checkpoint', 'convert_state_dict', 'detect_format']
