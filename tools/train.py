"""Train a ResNeSt classifier from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--auto-scale-lr]
        [--no-validate] [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

Several devices: ``bash tools/dist_train.sh CONFIG NUM_DEVICES [args]``.
"""
from resnest_mm.engine.cli import train

if __name__ == '__main__':
    train()
