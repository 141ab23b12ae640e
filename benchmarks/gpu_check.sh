#!/usr/bin/env bash
# One command for a GPU machine you may have for a few minutes (one H100/H200), kept inside a
# time budget (BUDGET_S seconds, default 420, from this script's start): the steps that do not
# fit are skipped and named.
#   1. the versions, and an import of everything the steps use (nothing else runs if it fails);
#   2. the parity tests on CUDA (fp32, TF32 off): our ResNeSt = the original, timm, mmpretrain;
#   2b. an input-bound row: real JPEGs from disk, CPU decode vs device decode (nvJPEG), img/s and
#      CPU-ms per image (benchmarks/input_bound.py);
#   3. tools/benchmark.py --synthetic --amp --amp-dtype bfloat16 (the train step through the
#      runner and optimizer wrapper training builds, images/s) for ours and timm's resnest50d in
#      the same recipe, ApexAmpHook dropped: batch 128 eager, batch 128 compiled, then batch 256
#      eager and compiled, each in channels_last and NCHW, ours and timm side by side; a row
#      whose autocast (seen inside the train step) is not bfloat16 is marked NOT bf16 and left
#      out of the ratios.
# Then one table of img/s and the ratios ours / timm. Files under $OUT: gpu_check.log (every
# step's command and output) and gpu_check.json (versions, rows, ratios, skipped steps).
# The steps and their settings: benchmarks/gpu_check.py.
#
# On a machine with internet, once: bash benchmarks/fetch_gpu_wheels.sh (wheels into .whl/);
# copy the checkout with .whl/ to the GPU machine, and there: bash benchmarks/gpu_check.sh
# On a CPU, tiny (what tests/test_benchmarks.py runs): PARITY_DEVICE=cpu PARITY_K=50-timm
#   BATCHES='2 4' MODES=eager SIZE=32 ITERS=1 WARMUP=0 BUDGET_S=80 bash benchmarks/gpu_check.sh
set -uo pipefail
GPU_CHECK_START=$(date +%s.%N)
export GPU_CHECK_START
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# The machine's torch is not the 2.14 resnest_mm is tested with: a deliberate trial.
export PYTHONUNBUFFERED=1 RESNEST_MM_ALLOW_UNTESTED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import mmengine, mmcv, mmpretrain, resnest' 2>/dev/null; then
    # --target keeps the machine's own packages intact
    ls .whl/*.whl >/dev/null 2>&1 \
        || { echo 'gpu_check: no wheels in .whl/; run bash benchmarks/fetch_gpu_wheels.sh here first'
             exit 1; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl \
        || { echo 'gpu_check: installing the wheels of .whl/ failed (above)'; exit 1; }
    # after the repository: model-index's wheel brings a top-level package named tests
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
exec "$PY" benchmarks/gpu_check.py
