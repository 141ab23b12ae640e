"""mmpretrain's ``CustomDataset`` and ``ImageNet``, finding their images by our one rule.

Registered under the same names in scope ``resnest_mm``, so every config's
``type='CustomDataset'`` / ``type='ImageNet'`` gets them. Only the folder scan differs
(:func:`~resnest_mm.datasets.image_files.scan_split`): hidden and system folders are not
classes, what is ignored is logged once with its count, and a broken link or a link loop stops
the build with a sentence naming it instead of being skipped or recursing until ``OSError: Too
many levels of symbolic links``. Annotation files (``ann_file``, ImageNet's ``meta/*.txt``) are
read in mmpretrain's format by :func:`~resnest_mm.datasets.annotation_file.read_annotation_file`,
which checks every line (names inside the image folder, labels within the classes) first.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset as _CustomDataset
from mmpretrain.datasets import ImageNet as _ImageNet

from ..registry import DATASETS
from ..utils.errors import (
    ExplainedFileNotFoundError,
    ExplainedRuntimeError,
    ExplainedValueError,
    RaisedInWorker,
)
from ..utils.escape import escape_name
from ..utils.mmengine_private import random_dataset_index, set_dataset_classes
from .annotation_file import read_annotation_file
from .image_files import scan_split
from .samplers.resumable_sampler import SampleKey
from .unreadable_log import UnreadableLog


class NoReadableSampleError(RaisedInWorker, ExplainedRuntimeError):
    """Every sample a training data set drew in a row was unreadable (``max_refetch + 1``).

    Raised in a data-loader worker: :class:`~resnest_mm.utils.errors.RaisedInWorker` cuts the
    worker's traceback back to the sentence.
    """


class _ScanByRule:
    """``_find_samples`` of mmpretrain's ``CustomDataset``, by the rule of ``image_files``."""

    # the run's record of unreadable files (UnreadableImageHook gives it): where a data set
    # that gives up writes the list at once
    unreadable_log: Optional[UnreadableLog] = None

    def load_data_list(self) -> List[dict]:
        """mmpretrain's ``CustomDataset.load_data_list``, with a local annotation file read by
        :func:`~resnest_mm.datasets.annotation_file.read_annotation_file` (every line checked,
        one sentence for the first bad one) instead of mmengine's ``list_from_file`` (read
        unbounded, each line trusted). A remote annotation file is read as mmpretrain does."""
        if not self.ann_file or not isinstance(get_file_backend(self.ann_file), LocalBackend):
            return super().load_data_list()
        classes = self.CLASSES
        samples = read_annotation_file(self.ann_file, self.with_label,
                                       num_classes=len(classes) if classes else None)
        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        if self.with_label:
            return [dict(img_path=backend.join_path(self.img_prefix, name), gt_label=label)
                    for name, label in samples]
        return [dict(img_path=backend.join_path(self.img_prefix, name)) for name in samples]

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
            set_dataset_classes(self, scan.classes)
        self.folder_to_idx = {c: i for i, c in enumerate(scan.classes)}
        if scan.empty_classes:
            logger.warning(f'{name}: no image in the class folder(s) '
                           f'{escape_name(", ".join(scan.empty_classes))} of '
                           f'{escape_name(self.img_prefix)}')
        return scan.samples

    # ResumableSampler hands it SampleKey(index, key) pairs: the key seeds the sample's
    # augmentation (results['sample_key'], read by LoadImageRobust)
    takes_sample_keys = True

    def _prepare(self, idx: int, key: Optional[Tuple[int, int, int]]) -> Optional[dict]:
        """mmengine's ``prepare_data`` with the sample's augmentation key."""
        data_info = self.get_data_info(idx)
        if key is not None:
            data_info['sample_key'] = key
        return self.pipeline(data_info)

    def __getitem__(self, idx: Union[int, SampleKey]) -> dict:
        """mmengine's ``BaseDataset.__getitem__``, ending in a sentence and the written list
        of unreadable files where mmengine raises ``Exception('Cannot find valid image after
        1000! ...')`` with neither (a folder of unreadable files); a :class:`SampleKey` from
        ``ResumableSampler`` gives the pipeline its ``sample_key``."""
        idx, key = (idx.index, idx.key) if isinstance(idx, SampleKey) else (idx, None)
        if self.test_mode:  # evaluation pipelines draw nothing random
            return super().__getitem__(idx)
        self.full_init()  # at once when loaded already
        for _ in range(self.max_refetch + 1):
            data = self._prepare(idx, key)
            if data is not None:  # None: a file the loader recorded as unreadable
                return data
            idx, key = random_dataset_index(self), None  # drawn after the seeded draws
        where = 'they are logged above'
        if self.unreadable_log is not None:
            try:
                listed = self.unreadable_log.write_list('train')
                if listed:
                    where = f'they are listed in {escape_name(listed)}'
            except OSError as exc:  # a full disk: this sentence still, naming both files
                where = (f'the list {escape_name(self.unreadable_log.list_path)} could not be '
                         f'written ({exc}), they are recorded in '
                         f'{escape_name(self.unreadable_log.folder)}')
        raise NoReadableSampleError(
            f'{type(self).__name__}: {self.max_refetch + 1} samples drawn in a row from '
            f'{escape_name(self.img_prefix or self.ann_file)} could not be read ({len(self)} '
            f'samples in the data set); {where}. Check the data with '
            'tools/misc/verify_dataset.py')


@DATASETS.register_module()
class CustomDataset(_ScanByRule, _CustomDataset):
    """mmpretrain's ``CustomDataset`` with the folder scan of :mod:`.image_files`."""


@DATASETS.register_module()
class ImageNet(_ScanByRule, _ImageNet):
    """mmpretrain's ``ImageNet`` with the folder scan of :mod:`.image_files`."""
