"""Resuming from an epoch checkpoint (``epoch_N.pth``, the one a restarted job in a changed world
or a plain ``--resume`` after an epoch takes) is bit for bit: the run resumed from ``epoch_1.pth``
ends with the uninterrupted run's weights, ``torch.equal`` on every tensor.

What could shift it: every draw made between the save and the next epoch's first batch (the
validation after the epoch, the next epoch's data iterator, which draws its workers' base seed
from torch's RNG, and with persistent workers only the first time). mmpretrain's ``Mixup``
draws from the global numpy and torch RNGs, so any shift mixes other pairs; ``NpuMixup`` has
generators of its own. The runs are parsed, merged and built as ``tools/train.py`` does, on the
tiny ResNet (tests/helpers/epoch_resume.py), on 1 process and on 2 gloo ranks under torchrun.
Each part of the fix has a case that fails without it (each part was taken out in turn, every
case run on 1 process and on 2 ranks): the epoch starting from the states the last one ended
with (``Mixup-0``, ``Mixup-2``, ``Mixup-0-best``: validation draws in between), the iterator
created with torch's RNG forked (``Mixup-2`` only: persistent workers draw only in a process's
first epoch), the epoch checkpoint recording those states (``Mixup-0-best`` only), the
augment's own generators (``NpuMixup-0`` and ``NpuMixup-2`` alike). So the subprocesses run
the cases no other case covers: ``Mixup-2`` and ``NpuMixup-0`` on both, ``Mixup-0-best`` on 1
process; ``Mixup-0`` runs in this process (the inner loop's round trip, not slow). With one seed
for all ranks every rank's RNG states are the same, so only ``Mixup-0-rankseed`` (2 ranks,
``diff_rank_seed=True``) sees a rank resume with another rank's states.
"""
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers.epoch_resume import run_case
from tests.helpers.tiny_config import free_port
from tests.helpers.toy_runner import ROOT

HELPER = os.path.join(ROOT, 'tests/helpers/epoch_resume.py')
# AUGMENT-WORKERS; which case covers what: above
CASES = ['NpuMixup-0', 'Mixup-2']


def _assert_bit_identical(out, case):
    whole, resumed = (torch.load(os.path.join(out, case, kind, 'epoch_2.pth'),
                                 weights_only=True)['state_dict'] for kind in ('whole', 'resumed'))
    assert whole.keys() == resumed.keys()
    differ = {k: (whole[k].float() - resumed[k].float()).abs().max().item()
              for k in whole if not torch.equal(whole[k], resumed[k])}
    assert not differ, f'{len(differ)} tensors differ, e.g. {next(iter(differ.items()))}'


def _run(out, data, nproc, cases):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    if nproc == 1:
        cmd = [sys.executable, HELPER, str(data), str(out), *cases]
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
               f'--master_port={free_port()}', HELPER, str(data), str(out), *cases,
               '--launcher', 'pytorch']
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_train_resume_test_round_trip_in_process(tiny_data, tmp_path, one_thread):
    """The inner loop's round trip, in this process (seconds): train, resume from epoch_1.pth
    (bit-identical, mmpretrain's Mixup, no loader workers), test both epoch_2.pth files as
    tools/test.py does: the same scores."""
    from resnest_mm.frontends.cli import test
    from tests.helpers.epoch_resume import TINY, case_options

    run_case(str(tiny_data), str(tmp_path), 'Mixup-0')
    _assert_bit_identical(tmp_path, 'Mixup-0')
    scores = [test([TINY, str(tmp_path / 'Mixup-0' / kind / 'epoch_2.pth'), '--work-dir',
                    str(tmp_path / f'test-{kind}'),
                    *case_options(str(tiny_data), 'Mixup-0', f'test-{kind}')])
              for kind in ('whole', 'resumed')]
    assert 'accuracy/top1' in scores[0] and scores[0] == scores[1]


@pytest.fixture(scope='module')
def one_process(tiny_data, tmp_path_factory):
    return _run(tmp_path_factory.mktemp('one'), tiny_data, 1,
                [*CASES[:-1], 'Mixup-0-best', CASES[-1]])


@pytest.fixture(scope='module')
def two_ranks(tiny_data, tmp_path_factory):
    return _run(tmp_path_factory.mktemp('two'), tiny_data, 2, [*CASES, 'Mixup-0-rankseed'])


@pytest.mark.slow
@pytest.mark.parametrize('case', CASES)
def test_one_process(one_process, case):
    _assert_bit_identical(one_process, case)


@pytest.mark.slow
def test_one_process_epoch_checkpoint_rewritten_by_save_best(one_process):
    """save_best writes epoch_1.pth again during validation, after its iterator drew: it
    records the RNG states epoch 1 ended with all the same."""
    _assert_bit_identical(one_process, 'Mixup-0-best')


@pytest.mark.slow
@pytest.mark.parametrize('case', CASES)
def test_two_gloo_ranks(two_ranks, case):
    _assert_bit_identical(two_ranks, case)


@pytest.mark.slow
def test_two_gloo_ranks_each_with_its_own_seed(two_ranks):
    """diff_rank_seed: each rank resumes with the RNG states it saved, not rank 0's."""
    _assert_bit_identical(two_ranks, 'Mixup-0-rankseed')
