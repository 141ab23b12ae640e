"""Data: what mmpretrain lacks for real image folders, and the demo data set."""
from .digits import write_digits

__all__ = ['write_digits']
