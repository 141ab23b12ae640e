"""Evaluate a checkpoint (top-1 / top-5) with a config's test data.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PREDICTIONS.pkl]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

Several devices: ``bash tools/dist_test.sh CONFIG CHECKPOINT NUM_DEVICES [args]``.
"""
from resnest_mm.engine.cli import test

if __name__ == '__main__':
    test()
