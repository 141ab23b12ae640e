"""Models: the ResNeSt backbone, its layers and weight conversion."""
from .backbones import ResNeSt, ResNeStBottleneck
from .layers import SplitAttentionConv2d
from .utils import convert_checkpoint, convert_state_dict, detect_format

__all__ = ['ResNeSt', 'ResNeStBottleneck', 'SplitAttentionConv2d', 'convert_checkpoint',
           'convert_state_dict', 'detect_format']
