#!/usr/bin/env bash
# bash tools/torchrun.sh SCRIPT NUM_DEVICES [script args]: one process per device via torchrun.
# Used by dist_train.sh and dist_test.sh. Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT,
# the same on every node; PYTHON picks the interpreter (default: python).
set -euo pipefail
SCRIPT=$1
DEVICES=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$DEVICES" \
    --master_port="${PORT:-29500}" \
    "$ROOT/$SCRIPT" "${@:3}" --launcher pytorch
