"""Evaluate a checkpoint (top-1 / top-5) with a config's test data.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PREDICTIONS.pkl]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

Several devices: ``bash tools/dist_test.sh CONFIG CHECKPOINT NUM_DEVICES [args]``.
"""
from resnest_mm.engine.runner.process_group import end_process
from resnest_mm.frontends.cli import test
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    run_tool(test, 'tools/test.py')  # bad input: one sentence, exit status 2
    end_process(0)  # a distributed run that ended well: exit 0 without the teardown gloo races
