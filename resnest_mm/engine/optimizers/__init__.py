from .apex_amp_optim_wrapper import ApexAmpOptimWrapper
from .npu_fused_sgd import build_npu_fused_sgd, fused_sgd_class

__all__ = ['ApexAmpOptimWrapper', 'build_npu_fused_sgd', 'fused_sgd_class']
