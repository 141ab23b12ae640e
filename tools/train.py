"""Train a ResNeSt classifier from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--auto-scale-lr]
        [--no-validate] [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

Several devices: ``bash tools/dist_train.sh CONFIG NUM_DEVICES [args]``.
"""
from resnest_mm.engine.runner.process_group import end_process
from resnest_mm.frontends.cli import train
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    run_tool(train, 'tools/train.py')  # bad input: one sentence, exit status 2
    end_process(0)  # a distributed run that ended well: exit 0 without the teardown gloo races
