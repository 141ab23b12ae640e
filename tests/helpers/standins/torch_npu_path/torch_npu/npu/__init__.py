"""STAND-IN for ``torch_npu.npu``, which torch_npu registers as ``torch.npu`` (contract tests only;
tests/helpers/standins/README.md).

What mmengine 0.10.7 (``device/utils.py``, ``dist/utils.py``, ``optim/optimizer/builder.py`` and
``amp_optimizer_wrapper.py``, ``runner/amp.py``, ``model/base_model``, ``structures``) and
resnest_mm call, on a simulated node of ``DEVICE_COUNT`` NPUs whose memory is the CPU's.
Refuses what torch_npu refuses there: a device index out of range (``set_device``), an RNG state
that is not a ByteTensor.
"""
from __future__ import annotations

from typing import Any, Dict

import torch

from . import amp, utils  # noqa: F401  (torch.npu.amp, torch.npu.utils)
from .utils import SOC_VERSION, get_soc_version, is_bf16_supported, is_support_inf_nan  # noqa

DEVICE_COUNT = {'value': 8}
STATE: Dict[str, Any] = {'current': 0, 'set_device_calls': [], 'jit_compile': None,
                         'synchronize_calls': 0, 'storages_loaded': 0}
_GENERATORS: Dict[int, torch.Generator] = {}

# torch_npu 1.11/2.0 named its device here; mmengine's BaseModel.to and
# BaseDataPreprocessor.to read it to place a model "on npu". The stand-in's NPU is the CPU.
native_device = 'cpu'

# Tensor types mmengine's structures name on NPU processes (instance_data.py); CPU ones here.
BoolTensor = torch.BoolTensor
LongTensor = torch.LongTensor
FloatTensor = torch.FloatTensor
HalfTensor = torch.HalfTensor

_NAMES = {104: 'Ascend910B', 220: 'Ascend910B1', 223: 'Ascend910B4', 250: 'Ascend910_9391'}


def _index(device: Any = None) -> int:
    if device is None:
        return STATE['current']
    if isinstance(device, torch.device):
        device = device.index if device.index is not None else STATE['current']
    elif isinstance(device, str):
        device = int(device.split(':')[1]) if ':' in device else STATE['current']
    if not 0 <= int(device) < DEVICE_COUNT['value']:
        raise RuntimeError(f'Invalid device ordinal {device}: this node has '
                           f"{DEVICE_COUNT['value']} NPUs")
    return int(device)


def is_available() -> bool:
    return DEVICE_COUNT['value'] > 0


def device_count() -> int:
    return DEVICE_COUNT['value']


def set_device(device: Any) -> None:
    STATE['current'] = _index(device)
    STATE['set_device_calls'].append(STATE['current'])


def current_device() -> int:
    return STATE['current']


def get_device_name(device: Any = None) -> str:
    _index(device)
    return _NAMES.get(SOC_VERSION['value'], f"Ascend (SoC {SOC_VERSION['value']})")


def synchronize(device: Any = None) -> None:
    STATE['synchronize_calls'] += 1  # the CPU runs synchronously: nothing to wait for


def set_compile_mode(jit_compile: bool = True) -> None:
    STATE['jit_compile'] = bool(jit_compile)


def _generator(device: Any = None) -> torch.Generator:
    return _GENERATORS.setdefault(_index(device), torch.Generator())


def get_rng_state(device: Any = 'npu') -> torch.Tensor:
    return _generator(None if device == 'npu' else device).get_state()


def set_rng_state(new_state: torch.Tensor, device: Any = 'npu') -> None:
    if not isinstance(new_state, torch.Tensor) or new_state.dtype != torch.uint8:
        raise TypeError('set_rng_state expects a torch.ByteTensor')
    _generator(None if device == 'npu' else device).set_state(new_state.cpu())


def manual_seed(seed: int) -> None:
    _generator().manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    for index in range(DEVICE_COUNT['value']):
        _generator(index).manual_seed(seed)


def get_amp_supported_dtype() -> list:
    """What torch.autocast asks a privateuse1 device module (torch_npu ``autocast_utils.py``)."""
    if is_bf16_supported():
        return [torch.float16, torch.bfloat16, torch.float32]
    return [torch.float16, torch.float32]


def reset() -> None:
    """Forget the simulated device state (the fixture calls this)."""
    STATE.update(current=0, set_device_calls=[], jit_compile=None, synchronize_calls=0,
                 storages_loaded=0)
    _GENERATORS.clear()
