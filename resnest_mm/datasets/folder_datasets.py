"""mmpretrain's ``CustomDataset`` and ``ImageNet``, finding their images by our one rule.

Registered under the same names in scope ``resnest_mm``, so every config's
``type='CustomDataset'`` / ``type='ImageNet'`` gets them. Only the folder scan differs
(:func:`~resnest_mm.datasets.image_files.scan_split`): hidden and system folders are not
classes, what is ignored is logged once with its count, and a broken link or a link loop stops
the build with a sentence naming it instead of being skipped or recursing until ``OSError: Too
many levels of symbolic links``. Annotation files (``ann_file``, ImageNet's ``meta/*.txt``) are
read exactly as mmpretrain reads them.
"""
from __future__ import annotations

from typing import List, Tuple, Union

from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset as _CustomDataset
from mmpretrain.datasets import ImageNet as _ImageNet

from ..registry import DATASETS
from ..utils.errors import ExplainedFileNotFoundError, ExplainedValueError
from .image_files import scan_split


class _ScanByRule:
    """``_find_samples`` of mmpretrain's ``CustomDataset``, by the rule of ``image_files``."""

    def _find_samples(self) -> List[Union[str, Tuple[str, int]]]:
        name = type(self).__name__
        try:
            scan = scan_split(self.img_prefix, self.extensions, self.with_label)
        except FileNotFoundError:
            raise ExplainedFileNotFoundError(
                f'{name}: the image folder {self.img_prefix} does not exist; check data_root '
                'and data_prefix') from None
        problem = scan.problems_sentence()
        if problem:
            raise ExplainedValueError(f'{name}: {problem}')
        logger = MMLogger.get_current_instance()
        ignored = scan.ignored_summary()
        if ignored:
            logger.warning(f'{name}: {ignored}')
        if not scan.samples:
            raise ExplainedFileNotFoundError(
                f'{name}: found no image in the class folders of {self.img_prefix} (image '
                f'extensions: {", ".join(scan.extensions)}); a folder data set reads '
                f'{self.img_prefix}/<class>/<image> files')
        if not self.with_label:
            return [path for path, _ in scan.samples]
        if self.CLASSES is not None and len(self.CLASSES) != len(scan.classes):
            raise ExplainedValueError(
                f'{name}: {self.img_prefix} has {len(scan.classes)} class folders but the data '
                f'set names {len(self.CLASSES)} classes; give every class a folder, or set '
                'metainfo.classes to the folders\' names')
        if self.CLASSES is None:
            self._metainfo['classes'] = tuple(scan.classes)
        self.folder_to_idx = {c: i for i, c in enumerate(scan.classes)}
        if scan.empty_classes:
            logger.warning(f'{name}: no image in the class folder(s) '
                           f'{", ".join(scan.empty_classes)} of {self.img_prefix}')
        return scan.samples


@DATASETS.register_module()
class CustomDataset(_ScanByRule, _CustomDataset):
    """mmpretrain's ``CustomDataset`` with the folder scan of :mod:`.image_files`."""


@DATASETS.register_module()
class ImageNet(_ScanByRule, _ImageNet):
    """mmpretrain's ``ImageNet`` with the folder scan of :mod:`.image_files`."""
