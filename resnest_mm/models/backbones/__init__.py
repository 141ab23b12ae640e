from .resnest import ResNeSt, ResNeStBottleneck

__all__ = ['ResNeSt', 'ResNeStBottleneck']
