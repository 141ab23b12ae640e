from .apex_amp_optim_wrapper import ApexAmpOptimWrapper
from .cpu_amp_optim_wrapper import CpuAmpOptimWrapper, EmulatedBf16Convolution
from .fused_sgd import FusedSGD
from .npu_fused_sgd import build_npu_fused_sgd, fused_sgd_class

__all__ = ['ApexAmpOptimWrapper', 'CpuAmpOptimWrapper', 'EmulatedBf16Convolution',
           'FusedSGD', 'build_npu_fused_sgd', 'fused_sgd_class']
