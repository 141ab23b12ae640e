"""Hooks that interrupt a run the way clusters do, for the interruption tests (imported by
tests/helpers/configs/tiny_resnet_digits.py through ``custom_imports``)."""
import os
import signal

from mmengine.hooks import Hook

from resnest_mm.registry import HOOKS


@HOOKS.register_module()
class InterruptHook(Hook):
    """After iteration ``at`` of rank ``rank``, send ``sig`` to this process (only in a job's
    first attempt: a restarted group must run through), or make the loss NaN there. The three
    come from ``INTERRUPT=at:rank:sig`` in the environment (unset: nothing happens).

    Each iteration also appends ``iter lr loss`` to ``WORK_DIR/trace-rank<r>.txt``. ``sig`` is
    ``KILL``, ``TERM``, ``USR1``, ``INT`` or ``NAN``.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        at, rank, sig = (os.environ.get('INTERRUPT') or '0:0:KILL').split(':')
        self.at, self.rank, self.sig = int(at), int(rank), sig

    def _first_attempt(self) -> bool:
        return int(os.environ.get('TORCHELASTIC_RESTART_COUNT') or 0) == 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.sig == 'NAN' and runner.rank == self.rank and runner.iter + 1 == self.at:
            data_batch['inputs'] = [x.float() * float('nan') for x in data_batch['inputs']]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        with open(os.path.join(runner.work_dir, f'trace-rank{runner.rank}.txt'), 'a') as f:
            f.write(f'{runner.iter + 1} {lr!r} {outputs["loss"].item()!r}\n')
        if self.sig != 'NAN' and runner.rank == self.rank and runner.iter + 1 == self.at \
                and self._first_attempt():
            os.kill(os.getpid(), getattr(signal, f'SIG{self.sig}'))
