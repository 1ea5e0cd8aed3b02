#!/bin/bash
# Usage (inside a SLURM batch script): bash jobs/train_or_resume.sh LAUNCHER... -- TRAIN_ARGS...
# Runs `LAUNCHER ./build/osprey train --name RUN TRAIN_ARGS` for a new job, or, when the job was
# requeued and RUN already has a checkpoint, `LAUNCHER ./build/osprey train --resume RUN` with
# TRAIN_ARGS' --set overrides (the run's config is its checkpoint's; --config and --name are
# dropped). RUN is $OSPREY_RUN_NAME, by default <job name>_<job id> (a requeued job keeps its id).
# With `#SBATCH --signal=USR1@300` every rank gets SIGUSR1 five minutes before the time limit,
# saves a resumable checkpoint and exits 138; the job then requeues itself (`#SBATCH --requeue`)
# and its next start resumes the run. Other exits end the job with their code.
# OSPREY_BIN: the osprey binary (default ./build/osprey, from the submit directory);
# OSPREY_MODULES: environment modules to load first, where the cluster has them (e.g. "openmpi").
set -uo pipefail
# shellcheck disable=SC2086  # a list of module names
if [ -n "${OSPREY_MODULES:-}" ]; then module load $OSPREY_MODULES; fi
launcher=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  launcher+=("$1")
  shift
done
[ $# -gt 0 ] || { echo "train_or_resume.sh: expected LAUNCHER... -- TRAIN_ARGS..." >&2; exit 2; }
shift
run=${OSPREY_RUN_NAME:-${SLURM_JOB_NAME:-osprey}_${SLURM_JOB_ID:-$$}}
runs_dir=${OSPREY_RUNS_DIR:-runs}
osprey=${OSPREY_BIN:-./build/osprey}

if [ -f "$runs_dir/$run/last.safetensors" ] || [ -f "$runs_dir/$run/best.safetensors" ]; then
  args=(--resume "$runs_dir/$run")
  while [ $# -gt 0 ]; do
    case $1 in
      --set) args+=("$1" "$2"); shift 2 ;;
      --set=*) args+=("$1"); shift ;;
      --config | --name) shift 2 ;;
      *) shift ;;
    esac
  done
  echo "train_or_resume.sh: resuming $runs_dir/$run (restart ${SLURM_RESTART_COUNT:-0} of this job)"
else
  args=(--name "$run" "$@")
fi
"${launcher[@]}" "$osprey" train "${args[@]}"
rc=$?
if [ $rc -eq 138 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "train_or_resume.sh: stopped by SIGUSR1 before the time limit; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" || exit $rc
  exit 0
fi
exit $rc
