"""Small helpers shared across the package."""
from .fileio import atomic_save, atomic_write

__all__ = ['atomic_save', 'atomic_write']
