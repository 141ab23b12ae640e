#!/usr/bin/env bash
# One prepared command for a lent GPU machine (under 5 minutes on one H100/H200):
#   1. the parity tests on CUDA (fp32, TF32 off): our ResNeSt = the original, timm, mmpretrain;
#   2. tools/benchmark.py --synthetic (bf16 AMP, train step incl. optimizer, images/s) for ours
#      (channels_last) and timm's resnest50d in the same recipe (NCHW, its faster layout), at
#      batch 128 and 256, eager and torch.compile'd; then the ratios ours / timm.
# Here, once: bash benchmarks/fetch_gpu_wheels.sh    There: bash benchmarks/gpu_check.sh
# (device tool: run(command='bash benchmarks/gpu_check.sh', carry=['.whl'], timeout_s=420)).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:${PYTHONPATH:-}"
OUT_DIR="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR/rates.txt"
# Smaller settings only for trying the script on a CPU: BATCHES="2" ITERS=1 WARMUP=1 MODES=eager
# PARITY_DEVICE=cpu bash benchmarks/gpu_check.sh
BATCHES="${BATCHES:-128 256}" ITERS="${ITERS:-30}" WARMUP="${WARMUP:-10}"
MODES="${MODES:-eager compile}" PARITY_DEVICE="${PARITY_DEVICE:-cuda}"
if ! python3 -c 'import mmpretrain' 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo 'gpu_check: no wheels; run benchmarks/fetch_gpu_wheels.sh here first'; exit 1; }
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0)
                                 if torch.cuda.is_available() else "no GPU")'

echo "== 1. parity on $PARITY_DEVICE"
RESNEST_MM_TEST_DEVICE=$PARITY_DEVICE timeout 150 python3 -m pytest -q -p no:cacheprovider \
    tests/test_models/test_parity.py 2>&1 | tail -n 3

echo "== 2. synthetic training throughput, bf16"
OURS=configs/resnest50_8xb128_in1k.py
TIMM=configs/benchmarks/timm-resnest50d_8xb128_in1k.py
for batch in $BATCHES; do
    for mode in $MODES; do
        flag=""; [ "$mode" = compile ] && flag="--compile"
        for who in ours timm; do
            cfg=$OURS; layout="--channels-last"
            [ "$who" = timm ] && { cfg=$TIMM; layout=""; }
            line=$(timeout 150 python3 tools/benchmark.py "$cfg" --synthetic --amp $layout $flag \
                --iters "$ITERS" --warmup "$WARMUP" --cfg-options train_dataloader.batch_size=$batch \
                val_dataloader.batch_size=$batch 2>"$OUT_DIR/$who-$batch-$mode.err" \
                | grep 'synthetic data')
            rate=$(echo "$line" | sed -E 's/.*train ([0-9.]+) img.*/\1/')
            echo "$who batch=$batch $mode: ${rate:-FAILED} img/s  ($line)"
            echo "$who $batch $mode ${rate:-nan}" >> "$OUT_DIR/rates.txt"
        done
    done
done
echo "== ratios ours / timm (goal: >= 1.5 against timm eager; >= 4000 img/s ours on one H100)"
python3 - "$OUT_DIR/rates.txt" <<'PY'
import sys
rates = {}
for line in open(sys.argv[1]):
    who, batch, mode, rate = line.split()
    rates[(who, batch, mode)] = float(rate)
for batch in sorted({key[1] for key in rates}, key=int):
    timm_eager = rates.get(('timm', batch, 'eager'), float('nan'))
    for mode in ('eager', 'compile'):
        ours, timm = rates.get(('ours', batch, mode)), rates.get(('timm', batch, mode))
        if ours and timm:
            print(f'batch {batch} {mode}: ours {ours:.0f}, timm {timm:.0f} img/s, ratio '
                  f'{ours / timm:.2f}; ours / timm eager {ours / timm_eager:.2f}')
PY
