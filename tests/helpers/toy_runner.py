"""A tiny real mmengine Runner (linear model, in-memory data) for engine-level tests.

Run as a script under torchrun it trains with ``launcher='pytorch'`` and prints
``RANK <r> OK <sum of weights>``; with ``--unpatched`` it runs on the stack as released.
"""
import argparse
import os
import sys

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


def toy_dataset(n: int = 16):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    return [dict(inputs=x[i], labels=int(x[i].sum() > 0)) for i in range(n)]


def make_runner(work_dir: str, **overrides) -> Runner:
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
    )
    cfg.update(overrides)
    return Runner(**cfg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('--unpatched', action='store_true')
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from resnest_mm import compat
    compat.apply()
    released_stack = compat.unpatched()
    if args.unpatched:
        released_stack.__enter__()  # stays in effect while the reference lives: the whole run
    runner = make_runner(args.work_dir, launcher='pytorch',
                         env_cfg=dict(dist_cfg=dict(backend='nccl')))
    runner.train()
    total = sum(p.sum().item() for p in runner.model.parameters())
    print(f'RANK {os.environ["RANK"]} OK {total:.6f}', flush=True)


if __name__ == '__main__':
    main()
