"""Draw a run's curves, or time its iterations, from its scalar log.

    python tools/analysis_tools/analyze_logs.py plot_curve LOG.json [LOG.json ...]
        --keys loss lr accuracy/top1 fps --out curves.png [--legend A B] [--title T]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG.json

LOG.json is WORK_DIR/<timestamp>/vis_data/<timestamp>.json, written by every run.
"""
from resnest_mm.frontends.analysis import analyze_logs
from resnest_mm.utils.errors import run_tool

if __name__ == '__main__':
    # bad input: one sentence, exit status 2
    run_tool(analyze_logs, 'tools/analysis_tools/analyze_logs.py')
