from .npu_mixup import NpuMixup

__all__ = ['NpuMixup']
