#!/usr/bin/env bash
# CI's SLURM check: a one-node SLURM on this machine (tools/slurm_cluster.sh), the jobs/ scripts
# submitted to it (tests/slurm_jobs_test.sh) with the osprey that tools/test.sh built and, when
# given, one built against MPICH (tools/test_mpich.sh), and the daemons stopped again whatever
# happened. Needs root.
# usage: tools/slurm_ci.sh [OSPREY [OSPREY_MPICH]]     (default build/osprey)
set -euo pipefail
cd "$(dirname "$0")/.."
osprey=$(realpath "${1:-build/osprey}")
osprey_mpich=${2:+$(realpath "$2")}
dir=$(mktemp -d /tmp/osprey-slurm-XXXXXX)
trap 'bash tools/slurm_cluster.sh stop "$dir"; rm -rf "$dir"' EXIT
bash tools/slurm_cluster.sh start "$dir"
export SLURM_CONF=$dir/slurm.conf
bash tests/slurm_jobs_test.sh "$PWD" "$osprey" "$osprey_mpich"
