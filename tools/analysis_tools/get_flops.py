"""FLOPs (multiply-adds, the paper's convention) and parameters of a config's classifier.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--table]
"""
from resnest_mm.frontends.analysis import get_flops
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    run_tool(get_flops, 'tools/analysis_tools/get_flops.py')  # bad input: one line, exit 2
