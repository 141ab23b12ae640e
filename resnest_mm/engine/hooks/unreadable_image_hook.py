"""Count, list and limit the images a run could not read."""
from __future__ import annotations

import glob
import os
import shutil
from typing import Dict, List, Optional

from mmengine.dist import all_gather_object, broadcast_object_list, get_rank, is_main_process
from mmengine.hooks import Hook

from ...datasets.unreadable_log import UnreadableLog, attach_unreadable_log, complete_lines
from ...registry import HOOKS
from ...utils import UnwritableError, check_writable_folder
from ...utils.errors import ExplainedOSError, ExplainedRuntimeError, ExplainedValueError
from ...utils.safe_open import UnsafeFileError, open_for_append
from ..loops import bare_model

LIST = 'unreadable_images.txt'  # the run's list, in the work dir
RECORDS = '.unreadable_images'  # the folder of each rank's records, emptied when a run starts


def _check_run_files(runner, records: str, folder: str) -> None:
    """Refuse, on every rank alike, a work dir whose list is not a regular file (a FIFO would
    block the epoch's end for ever, a link would be written through) or whose records folder is
    a link (emptying it would delete files elsewhere): files on disk are hostile until checked,
    and a work dir may be a copy from elsewhere. Each rank checks its own folder (on another
    node it is another disk); every rank's answer is gathered, so all stop on the first."""
    refusal = None
    for path in (records, folder):
        if os.path.islink(path):
            refusal = (f'{path} is a symbolic link to {os.path.realpath(path)}: the run '
                       'empties that folder when it starts, so it must be a folder of the '
                       'work dir; remove the link')
            break
    if refusal is None and is_main_process():
        try:
            check_writable_folder(runner.work_dir, 'the work dir', (LIST, ))
        except UnwritableError as exc:
            refusal = str(exc)
    refusal = next((r for r in all_gather_object(refusal) if r is not None), None)
    if refusal is not None:
        raise UnwritableError(refusal)


@HOOKS.register_module()
class UnreadableImageHook(Hook):
    """Report unreadable images by path at the end of every epoch, and stop when too many fail.

    :class:`~resnest_mm.datasets.LoadImageRobust` records each file it cannot read (in the data
    loader workers) in a per-rank folder: this hook gives the loop's data set, its loading
    transforms and the data preprocessor an
    :class:`~resnest_mm.datasets.unreadable_log.UnreadableLog` naming that folder, as their
    ``unreadable_log`` attribute, before each loop starts its workers (``before_train``,
    ``before_val``, ``before_test``). After every train, validation and test epoch the hook
    gathers the new entries
    of every rank (``all_gather_object``, so all ranks decide alike), logs how many there were
    and the first paths, appends them to ``<work_dir>/unreadable_images.txt`` (rank 0) and raises
    on every rank when the unreadable files exceed ``max_fraction`` of that loop's data set.
    mmengine and mmpretrain have nothing for this: a bad file either kills a worker or, with
    ``ignore_empty``, disappears without a word.

    Args:
        max_fraction (float): Largest tolerated share of unreadable files per data set.
            Defaults to 0.001 (about 1,300 ImageNet training images).
        show (int): Paths quoted in the log per epoch. Defaults to 10.
    """

    priority = 'LOW'

    def __init__(self, max_fraction: float = 0.001, show: int = 10) -> None:
        if not 0 <= max_fraction <= 1:
            raise ExplainedValueError(
                f'UnreadableImageHook.max_fraction={max_fraction} must be in [0, 1]')
        self.max_fraction = max_fraction
        self.show = show
        self._folder: Optional[str] = None
        self._log: Optional[UnreadableLog] = None
        self._offsets: Dict[str, int] = {}
        self._seen: Dict[str, set] = {}

    def before_run(self, runner) -> None:
        records = os.path.join(runner.work_dir, RECORDS)
        self._folder = os.path.join(records, f'rank{get_rank()}')
        _check_run_files(runner, records, self._folder)
        shutil.rmtree(self._folder, ignore_errors=True)
        os.makedirs(self._folder, exist_ok=True)
        self._log = UnreadableLog(self._folder, os.path.join(
            runner.work_dir, LIST) if is_main_process() else None)
        attach_unreadable_log(getattr(bare_model(runner.model), 'data_preprocessor', None),
                              self._log)

    def before_train(self, runner) -> None:
        attach_unreadable_log(runner.train_dataloader.dataset, self._log)

    def before_val(self, runner) -> None:
        attach_unreadable_log(runner.val_dataloader.dataset, self._log)

    def before_test(self, runner) -> None:
        attach_unreadable_log(runner.test_dataloader.dataset, self._log)

    def _collect(self) -> List[str]:
        lines: List[str] = []
        for path in sorted(glob.glob(os.path.join(self._folder or '', '*.tsv'))):
            new, self._offsets[path] = complete_lines(path, self._offsets.get(path, 0))
            lines += new  # entries are escaped: one per line
        return lines

    def _report(self, runner, mode: str, dataset) -> None:
        if self._folder is None:
            return
        entries = [line for rank_lines in all_gather_object(self._collect())
                   for line in rank_lines]
        seen = self._seen.setdefault(mode, set())
        new = []
        for line in entries:  # a skipped file can be drawn again by mmengine's refetch
            path = line.split('\t', 1)[0]
            if path not in seen:
                seen.add(path)
                new.append(line)
        if not new:
            return
        shown = '\n  '.join(line.split('\t', 1)[-1] for line in new[:self.show])
        total = len(dataset) if dataset is not None else 0
        listed = os.path.join(runner.work_dir, LIST)
        # counted in the log first: a list that cannot be written loses no count
        runner.logger.warning(
            f'{len(new)} unreadable image(s) in this {mode} epoch, {len(seen)} of {total} in '
            f'this data set so far (all listed in {listed}):\n  {shown}')
        failure = [None]  # rank 0 writes; every rank stops alike when it cannot
        if is_main_process():
            try:
                with open_for_append(listed, 'unreadable-image list') as f:  # no FIFO, no link
                    f.writelines(f'{mode}\t{line}\n' for line in new)
            except OSError as exc:
                named = 'them all' if len(new) <= self.show else f'the first {self.show}'
                command = getattr(runner, 'continue_command', None) or \
                    'tools/train.py CONFIG --resume'
                # a link or FIFO put there mid-run says what to do itself
                fix = 'Remove what is there' if isinstance(exc, UnsafeFileError) else \
                    'Free space on that disk (or choose another --work-dir)'
                failure[0] = (
                    f'{len(new)} unreadable image(s) of this {mode} epoch could not be added to '
                    f'{listed} ({exc.strerror or exc}); the log above counts them and names '
                    f'{named}. {fix}, then continue with {command}')
        broadcast_object_list(failure)
        if failure[0] is not None:
            raise ExplainedOSError(failure[0])
        if total and len(seen) > self.max_fraction * total:
            raise ExplainedRuntimeError(
                f'{len(seen)} of {total} {mode} images ({len(seen) / total:.2%}) could not be '
                f'read, more than UnreadableImageHook.max_fraction={self.max_fraction}. The '
                f'files are listed in {runner.work_dir}/unreadable_images.txt; check the data '
                '(tools/misc/verify_dataset.py) or raise max_fraction.')

    def after_train_epoch(self, runner) -> None:
        self._report(runner, 'train', runner.train_dataloader.dataset)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'val', runner.val_dataloader.dataset)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'test', runner.test_dataloader.dataset)
