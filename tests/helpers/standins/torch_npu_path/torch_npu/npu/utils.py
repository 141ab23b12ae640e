"""STAND-IN for ``torch_npu.npu.utils`` (mmengine reads ``get_soc_version`` from here).

SoC versions (torch_npu ``csrc/core/npu/NpuVariables.h``): 100-104 the 910A family, 220-225
910B1-B4, 250-256 the 910_93 (A3) family. From 220 on the SoC has inf/nan mode and bf16
(``is_support_inf_nan``, ``is_bf16_supported``).
"""
SOC_VERSION = {'value': 104}


def get_soc_version() -> int:
    return SOC_VERSION['value']


def is_support_inf_nan() -> bool:
    return SOC_VERSION['value'] >= 220


def is_bf16_supported(including_emulation: bool = False) -> bool:
    return SOC_VERSION['value'] >= 220
