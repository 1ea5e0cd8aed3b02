#!/usr/bin/env bash
# Usage: slurm_jobs_test.sh REPO OSPREY [OSPREY_MPICH]
#        (a running SLURM: SLURM_CONF set, see tools/slurm_cluster.sh)
# The real jobs/*.slurm scripts under a real scheduler, submitted from REPO as a user would, with
# small settings through sbatch's options and the scripts' arguments and environment: serial CPU
# training, hybrid MPI+OpenMP (2 ranks x 1 thread) through srun and through mpirun, the hybrid
# pipeline and the scaling sweep, and with OSPREY_MPICH (an osprey built against MPICH) the
# hybrid and pipeline jobs again through srun --mpi=pmi2. Each must exit 0 under
# `sbatch --wait`, report the world size asked for, and write its files. The GPU scripts must pass `sbatch --test-only`, and
# a job asking for more CPUs than the cluster has must be refused at submission, not queued.
# The jobs are submitted together (the node runs them in turn), each waited for by its sbatch.
set -uo pipefail
repo=$1 osprey=$2 osprey_mpich=${3:-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$repo" || exit 1
export OSPREY_BIN=$osprey OSPREY_RUNS_DIR=$out/runs
# OpenMPI's mpirun refuses root unless told (CI runs as root); sbatch exports the environment.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tiny=(--set epochs=1 --set limit_train=1024 --set limit_test=256 --set runs_dir="$out/runs")
two_ranks=(--nodes=1 --ntasks-per-node=2 --cpus-per-task=1)

fail() { echo "FAIL: $*"; }

# submit NAME SBATCH_OPTION... -- SCRIPT ARG...: sbatch --wait; sets job (its id).
submit() {
  local name=$1
  shift
  local options=()
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  local log="$out/$name.out"
  job=$(sbatch --wait --parsable --time=10 --output="$log" "${options[@]}" "$@")
  local rc=$?
  echo "== slurm job $name: $(env | grep -E '^OSPREY_(BIN|LAUNCHER|SRUN_MPI|SCALING_RANKS)=' |
    tr '\n' ' ')sbatch ${options[*]} $*"
  echo "   job ${job:-none}, exit code $rc"
  sed 's/^/   | /' "$log" 2>/dev/null | tail -n 6
  [ $rc -eq 0 ] || fail "$name: sbatch --wait exited $rc"
  return $rc
}

# check_run NAME RUN WORLD: the run's files, and the world size its config.json records.
check_run() {
  local name=$1 run=$out/runs/$2 world=$3 got
  for f in config.json metrics.jsonl last.safetensors best.safetensors curves.png; do
    [ -s "$run/$f" ] || fail "$name: no $run/$f"
  done
  [ "$(wc -l <"$run/metrics.jsonl" 2>/dev/null)" = 1 ] || fail "$name: metrics.jsonl is not one epoch"
  got=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["world_size"])' \
    "$run/config.json" 2>/dev/null)
  [ "$got" = "$world" ] || fail "$name: world size ${got:-unknown}, expected $world"
  echo "   checked: $run (world size ${got:-?}, $(wc -l <"$run/metrics.jsonl" 2>/dev/null) epoch)"
}

serial() {
  submit serial --cpus-per-task=2 -- jobs/train_cpu.slurm "${tiny[@]}" &&
    check_run serial "osprey-train-cpu_$job" 1
}
hybrid_srun() {
  submit hybrid_srun "${two_ranks[@]}" -- jobs/train_hybrid_cpu.slurm "${tiny[@]}" &&
    check_run hybrid_srun "osprey-hybrid-cpu_$job" 2
}
hybrid_mpirun() {
  OSPREY_LAUNCHER=mpirun submit hybrid_mpirun "${two_ranks[@]}" -- jobs/train_hybrid_cpu.slurm \
    "${tiny[@]}" && check_run hybrid_mpirun "osprey-hybrid-cpu_$job" 2
}
hybrid_mpich() {
  OSPREY_BIN=$osprey_mpich OSPREY_SRUN_MPI=pmi2 submit hybrid_mpich "${two_ranks[@]}" -- \
    jobs/train_hybrid_cpu.slurm "${tiny[@]}" && check_run hybrid_mpich "osprey-hybrid-cpu_$job" 2
}
# pipeline_job NAME: the 2-stage pipeline job with the OSPREY_BIN and launcher of the caller.
pipeline_job() {
  local name=$1
  submit "$name" "${two_ranks[@]}" -- jobs/train_pipeline_cpu.slurm "${tiny[@]}" \
    --set limit_train=256 --set limit_test=64 --set batch_size=32 --set width_mult=0.5 || return
  check_run "$name" "osprey-pipeline-cpu_$job" 2
  grep -q '"pipeline_stages": *2' "$out/runs/osprey-pipeline-cpu_$job/config.json" ||
    fail "$name: the run is not 2 pipeline stages"
}
pipeline() { pipeline_job pipeline; }
pipeline_mpich() { OSPREY_BIN=$osprey_mpich OSPREY_SRUN_MPI=pmi2 pipeline_job pipeline_mpich; }
scaling() {
  OSPREY_SCALING_RANKS="1 2" OSPREY_RESULTS_DIR=$out/results \
    submit scaling --ntasks=2 --cpus-per-task=1 -- jobs/scaling_cpu.slurm --epochs 1 \
    --limit-train 1024 --limit-test 256 || return
  local dir=$out/results/scaling ranks accuracy
  ranks=$(awk -F, 'NR > 1 { printf "%s ", $3 }' "$dir/speedup_table.csv" 2>/dev/null)
  accuracy=$(awk -F, 'NR > 1 && $14 > 0 { n++ } END { print n + 0 }' "$dir/speedup_table.csv" 2>/dev/null)
  [ "$ranks" = "1 2 " ] || fail "scaling: speedup_table.csv has ranks '${ranks}', expected 1 and 2"
  [ "$accuracy" = 2 ] || fail "scaling: speedup_table.csv lacks a test accuracy per row"
  for f in speedup.png efficiency.png table.md; do [ -s "$dir/$f" ] || fail "scaling: no $f"; done
  echo "   checked: $dir/speedup_table.csv (ranks $ranks, test accuracy on $accuracy rows), speedup.png, efficiency.png, table.md"
}

jobs=(serial hybrid_srun hybrid_mpirun pipeline scaling)
[ -z "$osprey_mpich" ] || jobs+=(hybrid_mpich pipeline_mpich)
for j in "${jobs[@]}"; do "$j" >"$out/$j.report" 2>&1 & done
wait
for j in "${jobs[@]}"; do cat "$out/$j.report"; done

for spec in "jobs/train_gpu.slurm --cpus-per-task=2" \
  "jobs/train_multi_gpu.slurm --ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1"; do
  read -r script options <<<"$spec"
  # shellcheck disable=SC2086  # the options are words
  if answer=$(sbatch --test-only $options "$script" 2>&1); then
    echo "== sbatch --test-only $options $script: ${answer#sbatch: }"
  else
    fail "sbatch --test-only $options $script: $answer" | tee -a "$out/checks.report"
  fi
done
# train_cpu.slurm as written asks for 16 CPUs; this node has fewer.
if answer=$(timeout 60 sbatch --parsable jobs/train_cpu.slurm 2>&1); then
  fail "a 16-CPU job was accepted on a $(nproc)-CPU cluster (job $answer)" | tee -a "$out/checks.report"
else
  echo "== a job too large for the cluster is refused: ${answer#sbatch: }"
fi

failures=$(cat "$out"/*.report | grep -c '^FAIL: ')
if [ "$failures" -gt 0 ]; then
  echo "slurm jobs: $failures failures"
  exit 1
fi
echo "slurm jobs: ${#jobs[@]} jobs ran and wrote their files; the GPU scripts and the limit checked"
