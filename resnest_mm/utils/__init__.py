"""Small helpers shared across the package."""
from .fileio import (
    DiskFullError,
    UnwritableError,
    atomic_save,
    atomic_write,
    atomic_write_bytes,
    check_writable_folder,
)

__all__ = ['DiskFullError', 'UnwritableError', 'atomic_save', 'atomic_write',
           'atomic_write_bytes', 'check_writable_folder']
