#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG NUM_DEVICES [train.py args]
# One process per device; the backend follows the device (hccl / nccl / gloo).
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT, the same on every node (RDZV=c10d for
# torchrun's elastic rendezvous). MAX_RESTARTS=N: when a process dies, torchrun restarts the
# group up to N times and the run resumes from its newest checkpoint (tools/torchrun.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG NUM_DEVICES [train.py args]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/torchrun.sh" tools/train.py "$2" "$1" "${@:3}"
