"""STAND-IN for Ascend apex (contract tests only; see tests/helpers/standins/README.md)."""
from . import amp, optimizers  # noqa: F401
