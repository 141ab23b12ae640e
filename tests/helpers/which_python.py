"""Run by tools/torchrun.sh in a test: says which interpreter torchrun started."""
import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument('--launcher')
parser.add_argument('--local-rank', '--local_rank', type=int)
parser.parse_args()
print('PYTHON', sys.executable, flush=True)
