"""Small helpers shared across the package."""
from .fileio import DiskFullError, atomic_save, atomic_write, atomic_write_bytes

__all__ = ['DiskFullError', 'atomic_save', 'atomic_write', 'atomic_write_bytes']
