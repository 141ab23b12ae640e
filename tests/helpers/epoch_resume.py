"""Train the tiny ResNet for 2 epochs, then resume a second run from the first's ``epoch_1.pth``,
both parsed, merged and built as ``tools/train.py`` does; for the epoch-resume tests.

    python tests/helpers/epoch_resume.py DATA OUT CASE... [--launcher pytorch]

A CASE is ``AUGMENT-WORKERS[-best][-rankseed]``: ``Mixup`` (mmpretrain's, drawing from the
global numpy and torch RNGs) or ``NpuMixup`` (generators of its own), 0 or 2 (persistent)
train-loader workers, with ``-best`` ``save_best='auto'`` (which writes ``epoch_1.pth`` again
during the validation after epoch 1, when the best checkpoint changes), with ``-rankseed``
``randomness.diff_rank_seed=True`` (each rank its own seed, so its own RNG states).
Each case writes ``OUT/CASE/whole/epoch_2.pth`` (uninterrupted) and ``OUT/CASE/resumed/
epoch_2.pth``; in between both runs validate after epoch 1 (the tiny config's ``val_interval=1``),
so every draw made between two epochs is on the path. Under torchrun (``--launcher pytorch``)
the cases run one after the other in the same gloo group.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, 'tests/helpers/configs/tiny_resnet_digits.py')
AUGMENTS = ('Mixup', 'NpuMixup')


def case_options(data: str, case: str, name: str) -> list:
    """``--cfg-options`` for ``case`` on ``data``; ``name`` keeps mmengine's loggers and message
    hubs of runs in one process apart."""
    augment, workers, *flags = case.split('-')
    if augment not in AUGMENTS or workers not in ('0', '2') or \
            not set(flags) <= {'best', 'rankseed'} or len(set(flags)) != len(flags):
        raise ValueError(f'case {case!r}: use AUGMENT-WORKERS[-best][-rankseed], AUGMENT in '
                         f'{AUGMENTS}, WORKERS 0 or 2')
    persistent = workers != '0'
    return ['--cfg-options',
            *(['default_hooks.checkpoint.save_best=auto'] if 'best' in flags else []),
            *(['randomness.diff_rank_seed=True'] if 'rankseed' in flags else []),
            *(f'{loader}.dataset.data_root={data}'
              for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            f'model.train_cfg.augments.type={augment}',
            'train_dataloader.batch_size=4', 'val_dataloader.batch_size=12',  # few iterations
            f'train_dataloader.num_workers={workers}',
            f'train_dataloader.persistent_workers={persistent}',
            'default_hooks.checkpoint.iter_interval=-1',  # epoch checkpoints only
            f'experiment_name={name}']


def _train(argv: list) -> None:
    """``tools/train.py``'s parsing, merging and runner (``resnest_mm.frontends.cli.train``), but
    the process group stays when the run ends: the next run of this process joins it again
    (a second group on the same torchrun store would read the first one's addresses)."""
    from resnest_mm.frontends.cli import build_runner, merge_train_args, train_parser
    from resnest_mm.frontends.config_loader import load_config

    args = train_parser().parse_args(argv)
    build_runner(merge_train_args(load_config(args.config), args)).train()


def run_case(data: str, out: str, case: str, launcher: str = 'none') -> None:
    """The uninterrupted run and the run resumed from its ``epoch_1.pth``, for ``case``."""
    whole, resumed = (os.path.join(out, case, kind) for kind in ('whole', 'resumed'))
    common = ['--launcher', launcher]
    _train([TINY, '--work-dir', whole, *common, *case_options(data, case, f'{case}-whole')])
    _train([TINY, '--work-dir', resumed, '--resume', os.path.join(whole, 'epoch_1.pth'),
           *common, *case_options(data, case, f'{case}-resumed')])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('data')
    parser.add_argument('out')
    parser.add_argument('cases', nargs='+')
    parser.add_argument('--launcher', default='none')
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    import torch
    torch.set_num_threads(1)
    for case in args.cases:
        run_case(args.data, args.out, case, args.launcher)
    from resnest_mm.engine.runner.process_group import leave_process_group
    leave_process_group(synchronize=True)


if __name__ == '__main__':
    main()
