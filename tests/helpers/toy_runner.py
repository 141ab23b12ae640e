"""A tiny real Runner (linear model, in-memory data) for engine-level tests: ``ResNeStRunner``,
or mmengine's own ``Runner`` where a test shows what the released stack does.

Run as a script under torchrun it trains with ``launcher='pytorch'`` and prints
``RANK <r> OK <sum of weights>``; with ``--released`` it runs mmengine's ``Runner``; see
``--help`` for the options of the distributed tests (batch, BN/SyncBN, traces, a dying rank).
"""
import argparse
import os
import sys
import uuid
from typing import Optional

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ToyModel(BaseModel):
    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4) if bn else nn.Identity()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.linear(self.norm(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


def toy_dataset(n: int = 16):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    return [dict(inputs=x[i], labels=int(x[i].sum() > 0)) for i in range(n)]


def make_runner(work_dir: str, runner_cls: Optional[type] = None, **overrides) -> Runner:
    """A runner of ``runner_cls`` (default ``ResNeStRunner``) on the toy model and data."""
    if runner_cls is None:
        from resnest_mm.engine.runner import ResNeStRunner
        runner_cls = ResNeStRunner
    cfg = dict(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(dataset=toy_dataset(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='CosineAnnealingLR', T_max=2, by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='resnest_mm',
        # mmengine names a runner's message hub, logger and visualizer after its start second:
        # two runners of one test started in the same second would share one message hub
        experiment_name=f'toy-{uuid.uuid4().hex[:8]}',
    )
    cfg.update(overrides)
    return runner_cls(**cfg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('--released', action='store_true', help="mmengine's own Runner")
    parser.add_argument('--batch', type=int, default=4, help='per process')
    parser.add_argument('--norm', choices=['none', 'bn', 'syncbn'], default='none')
    parser.add_argument('--trace', action='store_true',
                        help='write "iter lr loss" lines to WORK_DIR/trace-rank<r>.txt')
    parser.add_argument('--die-rank', type=int, help='this rank exits hard ...')
    parser.add_argument('--die-at', type=int, default=2, help='... after this iteration')
    parser.add_argument('--launcher', default='pytorch')
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from mmengine.hooks import Hook

    import resnest_mm.registry  # noqa: F401
    rank = int(os.environ.get('RANK', 0))

    class Probe(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if args.trace:
                lr = runner.optim_wrapper.get_lr()['lr'][0]
                with open(os.path.join(runner.work_dir, f'trace-rank{rank}.txt'), 'a') as f:
                    f.write(f'{runner.iter + 1} {lr!r} {outputs["loss"].item()!r}\n')
            if args.die_rank == rank and runner.iter + 1 == args.die_at:
                os._exit(3)  # as a crashed or killed process: no cleanup, no barrier

    torch.manual_seed(0)  # the same initial weights whatever the process count
    runner = make_runner(
        args.work_dir, runner_cls=Runner if args.released else None, launcher=args.launcher,
        model=ToyModel(bn=args.norm != 'none'),
        env_cfg=dict(dist_cfg=dict(backend='nccl')), custom_hooks=[Probe()],
        train_dataloader=dict(dataset=toy_dataset(), batch_size=args.batch,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        **(dict(cfg=dict(sync_bn='torch')) if args.norm == 'syncbn' else {}))
    runner.train()
    total = sum(p.sum().item() for p in runner.model.parameters())
    print(f'RANK {runner.rank} OK {total:.6f}', flush=True)
    from resnest_mm.engine.runner.process_group import end_process
    end_process(0)  # as tools/train.py: no interpreter teardown for gloo's threads to race


if __name__ == '__main__':
    main()
