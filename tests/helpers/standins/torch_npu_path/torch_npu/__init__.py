"""STAND-IN for torch_npu (contract tests only; see tests/helpers/standins/README.md).

``npu`` (what torch registers as ``torch.npu``: device queries, ``set_device``, RNG state,
``set_compile_mode``, ``amp.GradScaler``/``amp.autocast``, ``utils.get_soc_version`` ...),
``optim.NpuFusedSGD`` (combined buffers, torch_npu's refusals), ``profiler`` (torch_npu's
profiler API over torch's CPU profiler) and an ``hccl`` process-group backend on gloo.

Importing it changes nothing in torch, unless ``STANDIN_TORCH_NPU_PROCESS=1``: then, as real
torch_npu, it renames torch's privateuse1 backend to ``npu`` and registers ``torch.npu`` and
``hccl`` for the rest of the process (subprocess tests; the ``simulated_npu`` fixture does the
reversible part in-process).
"""
import os

from . import npu, optim, profiler, utils  # noqa: F401
from ._registry import install_in_this_process
from .npu.utils import SOC_VERSION  # noqa: F401  (tests set SOC_VERSION['value'])

if os.environ.get('STANDIN_TORCH_NPU_PROCESS') == '1':
    install_in_this_process()
