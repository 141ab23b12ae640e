"""Small helpers shared across the package."""
from .fileio import atomic_save

__all__ = ['atomic_save']
