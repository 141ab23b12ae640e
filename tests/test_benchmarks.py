"""The benchmarks run (tiny sizes) and print their ratios; their goals are not asserted here."""
import os
import subprocess
import sys


def test_data_pipeline_benchmark_prints_ratios(repo_root):
    result = subprocess.run([sys.executable, 'benchmarks/data_pipeline.py', '--images', '4',
                             '--repeats', '1'], cwd=repo_root, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONPATH=repo_root))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if 'ratio' in line]
    assert [line.split(':')[0].strip() for line in lines] == ['train', 'val']
