#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to run the jobs/ scripts under a real scheduler (CI
# does: tools/slurm_ci.sh). `start` installs Debian's slurm-wlm and munge when missing, writes
# DIR/slurm.conf for this node as `slurmd -C` describes it (no cgroups: process tracking by
# /proc, no task plugin; cores as the consumable resource; two stand-in GPUs so that the GPU job
# scripts can be checked with `sbatch --test-only`), and starts munged (as the munge
# user), slurmctld and slurmd; `stop` ends the three. Clients then need SLURM_CONF=DIR/slurm.conf.
# Needs root. Without systemd the packages' own service starts are refused, harmlessly.
# usage: tools/slurm_cluster.sh start|stop [DIR]      (DIR default /tmp/osprey-slurm)
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-}
dir=${2:-/tmp/osprey-slurm}
log() { echo "== slurm_cluster: $*"; }

stop() {
  for daemon in slurmd slurmctld; do
    if [ -f "$dir/$daemon.pid" ]; then kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true; fi
  done
  if [ -f /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
  for _ in $(seq 50); do
    pgrep -f "(slurmd|slurmctld) -f $dir/slurm.conf" >/dev/null || break
    sleep 0.1
  done
  log "stopped"
}

write_conf() {
  local node host
  node=$(slurmd -C | head -n 1)
  host=$(hostname -s)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=osprey
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
ReturnToService=2
# Refuse at submission what the node cannot give, instead of queueing it forever.
EnforcePartLimits=ALL
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
$node Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # Two stand-in GPUs: SLURM counts a GPU only with a device file, and no job here uses them.
  printf 'NodeName=%s Name=gpu File=%s\n' "$host" /dev/null "$host" /dev/zero >"$dir/gres.conf"
}

start() {
  [ "$(id -u)" -eq 0 ] || { echo "slurm_cluster: needs root" >&2; exit 1; }
  bash tools/install_deps.sh slurm-wlm munge >/dev/null
  stop >/dev/null
  rm -rf "$dir"
  mkdir -p "$dir/state" "$dir/spool"
  write_conf
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- munged
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
    sleep 0.2
  done
  sinfo -h -o %t | grep -qE '^(idle|mix|alloc)' || {
    tail -n 20 "$dir"/*.log
    echo "slurm_cluster: the node did not come up" >&2
    exit 1
  }
  log "up: $(sinfo -h -o '%N %c CPUs %G %t') (SLURM_CONF=$SLURM_CONF)"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) sed -n 2,10p "$0"; exit 2 ;;
esac
