from .load_image import UNREADABLE_DIR_ENV, LoadImageRobust, record_unreadable

__all__ = ['UNREADABLE_DIR_ENV', 'LoadImageRobust', 'record_unreadable']
