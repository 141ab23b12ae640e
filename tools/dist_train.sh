#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG NUM_DEVICES [train.py args]
# One process per device through torchrun; the backend follows the device (hccl/nccl/gloo).
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT, the same on every node.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG NUM_DEVICES [train.py args]" >&2
    exit 2
fi
CONFIG=$1
DEVICES=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$DEVICES" \
    --master_port="$PORT" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
