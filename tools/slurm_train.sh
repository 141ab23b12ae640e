#!/usr/bin/env bash
# bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]
#
# One task per device, started by srun; mmengine's slurm launcher reads the SLURM_* variables and
# resnest_mm picks the backend of the device (HCCL on Ascend, NCCL on CUDA, gloo on CPU).
# Environment:
#   DEVICES (8), DEVICES_PER_NODE (8), CPUS_PER_TASK (5)   the step's shape
#   GRES                e.g. gpu:8 or npu:8, as this cluster names its accelerators (none by
#                       default: CPU nodes, or clusters that give devices without --gres)
#   SIGNAL_SECONDS (120) Slurm sends SIGUSR1 this long before the time limit (and SIGTERM when it
#                       preempts): training saves a checkpoint at that iteration and stops
#                       with status 138 (143)
#   REQUEUE=1           submit as a batch job (sbatch --requeue) instead of running the step
#                       here: a job stopped by its time limit or preempted is put back in the
#                       queue, and the requeued job (SLURM_RESTART_COUNT > 0) resumes from the
#                       newest checkpoint of WORK_DIR by itself
#   SRUN_ARGS, SBATCH_ARGS   more options for srun / sbatch;  PYTHON (python)
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-}
DEVICES=${DEVICES:-8}
DEVICES_PER_NODE=${DEVICES_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL_SECONDS=${SIGNAL_SECONDS:-120}
SRUN_ARGS=${SRUN_ARGS:-""}
SBATCH_ARGS=${SBATCH_ARGS:-""}
# inside the batch job this script runs from Slurm's spool folder: the checkout comes with it
ROOT="${RESNEST_MM_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
PYTHON=${PYTHON:-python}
EXTRA=("${@:5}")
if [ -n "$WORK_DIR" ]; then
    EXTRA=(--work-dir "$WORK_DIR" "${EXTRA[@]}")
fi
SHAPE=(-p "$PARTITION" --job-name="$JOB_NAME" --ntasks="$DEVICES"
       --ntasks-per-node="$DEVICES_PER_NODE" --cpus-per-task="$CPUS_PER_TASK")
if [ -n "${GRES:-}" ]; then
    SHAPE+=(--gres="$GRES")
fi

if [ "${REQUEUE:-0}" = "1" ] && [ -z "${RESNEST_MM_IN_BATCH:-}" ]; then
    # the batch job runs this script again, inside its allocation
    # shellcheck disable=SC2086
    exec sbatch "${SHAPE[@]}" --requeue --signal="USR1@$SIGNAL_SECONDS" --open-mode=append \
        --export="ALL,RESNEST_MM_IN_BATCH=1,RESNEST_MM_ROOT=$ROOT" $SBATCH_ARGS \
        "$ROOT/tools/slurm_train.sh" "$@"
fi

status=0
# shellcheck disable=SC2086
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
srun "${SHAPE[@]}" --kill-on-bad-exit=1 --signal="USR1@$SIGNAL_SECONDS" $SRUN_ARGS \
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${EXTRA[@]}" || status=$?

# Stopped at a signal after saving (138 SIGUSR1, 143 SIGTERM): in a batch job, queue it again;
# it resumes from that checkpoint.
if [ -n "${RESNEST_MM_IN_BATCH:-}" ] && { [ "$status" = 138 ] || [ "$status" = 143 ]; }; then
    echo "tools/slurm_train.sh: the run stopped at a signal (status $status) after saving;" \
         "requeueing job $SLURM_JOB_ID, which resumes from its newest checkpoint" >&2
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
