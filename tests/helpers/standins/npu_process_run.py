"""The toy Runner in a simulated Ascend NPU process; prints one JSON line of what happened.

Run with :func:`tests.helpers.standins.npu_process_env`: importing mmengine then imports the
torch_npu stand-in, which registers ``torch.npu``, ``hccl`` and the ``npu`` device type for good,
so mmengine's import-time NPU choices (``DEVICE``, its ``GradScaler``, torch_npu's optimizers)
and ``torch.autocast('npu')`` are the real code paths.

    python tests/helpers/standins/npu_process_run.py WORK_DIR RUN [RUN ...]

A RUN is ``plain`` (the toy config), ``hook`` (plus ``ApexAmpHook``: without apex, its native
fp16 fallback) or ``hook-overflow-at-K`` (iteration K's loss overflows once scaled). The JSON
maps each RUN to the device mmengine chose, the optimizer wrapper, the loss scaler's type and
final scale, and the weights after every iteration (exact floats).
"""
import argparse
import json
import os
import sys

import torch
from mmengine.hooks import Hook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def overflow_model(overflow_at: int):
    """The toy model, whose loss at train iteration ``overflow_at`` is 1e34 times larger:
    finite, but infinite once multiplied by a loss scale of 2^16."""
    from tests.helpers.toy_runner import ToyModel

    class OverflowAt(ToyModel):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, inputs, labels=None, mode='tensor'):
            out = super().forward(inputs, labels, mode)
            if mode == 'loss':
                if self.calls == overflow_at:
                    out = dict(loss=out['loss'] * 1e34)
                self.calls += 1
            return out

    return OverflowAt()


class WeightsProbe(Hook):
    """The model's weights after every training iteration."""

    def __init__(self) -> None:
        self.snapshots = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = getattr(runner.model, 'module', runner.model)
        self.snapshots.append([p.detach().clone() for p in model.parameters()])


def run(work_dir: str, hook: bool, overflow_at: int) -> dict:
    """One toy run (2 epochs, 8 iterations); what it computed."""
    import mmengine.device

    from tests.helpers.toy_runner import make_runner
    torch.manual_seed(0)  # the same initial weights in every run
    probe = WeightsProbe()
    hooks = [dict(type='ApexAmpHook')] if hook else []
    runner = make_runner(work_dir, model=overflow_model(overflow_at),
                         custom_hooks=hooks + [probe])
    runner.train()
    scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
    return dict(
        device=mmengine.device.get_device(),
        npu_device_type=str(torch.device('npu', 0)),
        wrapper=type(runner.optim_wrapper).__name__,
        optimizer=type(runner.optim_wrapper.optimizer).__name__,
        scaler=None if scaler is None else f'{type(scaler).__module__}.{type(scaler).__name__}',
        loss_scale=None if scaler is None else scaler.get_scale(),
        snapshots=[[p.reshape(-1).tolist() for p in snap] for snap in probe.snapshots])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('runs', nargs='+', metavar='RUN',
                        help='"plain", "hook" or "hook-overflow-at-K", each a separate run')
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    results = {}
    for name in args.runs:
        overflow_at = int(name.rsplit('-', 1)[1]) if 'overflow' in name else -1
        results[name] = run(os.path.join(args.work_dir, name), name.startswith('hook'),
                            overflow_at)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
