#!/usr/bin/env bash
# bash tools/dist_test.sh CONFIG CHECKPOINT NUM_DEVICES [test.py args]
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT, the same on every node.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT NUM_DEVICES [test.py args]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/torchrun.sh" tools/test.py "$3" "$1" "$2" "${@:4}"
