#!/usr/bin/env bash
# bash tools/torchrun.sh SCRIPT NUM_DEVICES [script args]: one process per device via torchrun.
# Used by dist_train.sh and dist_test.sh. Several nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT,
# the same on every node; PYTHON picks the interpreter (default: python).
set -euo pipefail
SCRIPT=$1
DEVICES=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# The rendezvous port must be free on the master node: torchrun would otherwise fail with a long
# trace (or join another job's rendezvous). Say so in one sentence instead.
if [ "${NODE_RANK:-0}" = "0" ]; then
    "${PYTHON:-python}" - "${PORT:-29500}" <<'PY'
import socket
import sys

port = int(sys.argv[1])
with socket.socket() as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(('', port))
    except OSError as exc:
        sys.exit(f'tools/torchrun.sh: port {port} is already in use on this machine '
                 f'({exc.strerror}), perhaps by another training job: choose a free one, '
                 f'e.g. PORT={port + 1} bash tools/dist_train.sh CONFIG NUM_DEVICES')
PY
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$DEVICES" \
    --master_port="${PORT:-29500}" \
    "$ROOT/$SCRIPT" "${@:3}" --launcher pytorch
