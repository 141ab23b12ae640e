#!/usr/bin/env bash
# bash tools/torchrun.sh SCRIPT NUM_DEVICES [script args]: one process per device via torchrun.
# Used by dist_train.sh and dist_test.sh. Environment:
#   NNODES, NODE_RANK, MASTER_ADDR, PORT   several nodes (the same MASTER_ADDR and PORT on each)
#   RDZV=c10d (RDZV_ID)                    torchrun's c10d rendezvous instead of a fixed master:
#                                          nodes may start in any order and ranks are assigned
#                                          as they join (NODE_RANK is then only a label)
#   MAX_RESTARTS (default 0)               restart the whole group this many times when a
#                                          process dies; the restarted group resumes from the
#                                          work dir's newest checkpoint by itself
#   PYTHON                                 the interpreter (default: python, or this checkout's
#                                          .venv made by `make` when python has no torch)
set -euo pipefail
SCRIPT=$1
DEVICES=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    if ! python -c 'import torch' 2>/dev/null && [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"  # after `make demo` / `make test`, nothing activated
    fi
fi
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "tools/torchrun.sh: $PYTHON cannot import torch: activate the environment where" \
         "resnest_mm is installed, run make venv, or set PYTHON=/path/to/python" >&2
    exit 2
fi

# The rendezvous port must be free on the master node: torchrun would otherwise fail with a long
# trace (or join another job's rendezvous). Say so in one sentence instead.
if [ "${NODE_RANK:-0}" = "0" ] && [ "${RDZV:-static}" = "static" ]; then
    "$PYTHON" - "${PORT:-29500}" <<'PY'
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

case "${RDZV:-static}" in
    static) RENDEZVOUS=(--node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
                        --master_port="${PORT:-29500}") ;;
    c10d) RENDEZVOUS=(--rdzv_backend=c10d --rdzv_endpoint="${MASTER_ADDR:-127.0.0.1}:${PORT:-29500}"
                      --rdzv_id="${RDZV_ID:-resnest_mm}") ;;
    *) echo "tools/torchrun.sh: RDZV=$RDZV: use static (the default) or c10d" >&2; exit 2 ;;
esac

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --nproc_per_node="$DEVICES" \
    --max-restarts="${MAX_RESTARTS:-0}" \
    "${RENDEZVOUS[@]}" \
    "$ROOT/$SCRIPT" "${@:3}" --launcher pytorch
