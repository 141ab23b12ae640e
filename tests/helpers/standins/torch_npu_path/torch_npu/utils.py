"""STAND-IN for ``torch_npu.utils`` (``combine_tensors.py``): combined buffers on the CPU."""
from tests.helpers.standins.combined import combine as npu_combine_tensors  # noqa: F401
