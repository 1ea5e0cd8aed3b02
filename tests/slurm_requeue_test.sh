#!/usr/bin/env bash
# Usage: slurm_requeue_test.sh OSPREY REPO [TRAIN_ARGS...]
# The decision logic of jobs/train_or_resume.sh, outside a scheduler: a job whose training gets
# SIGUSR1 (SLURM's --signal warning) asks `scontrol requeue JOBID` and exits 0; started again
# with the same job id (a requeued job), it resumes the run and finishes it. `scontrol` here is
# a stand-in that records its arguments (the real scheduler is exercised by the SLURM CI job).
set -u
osprey=$1 repo=$2
shift 2
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"
mkdir bin
printf '#!/bin/sh\necho "$@" >>"%s/requeued"\n' "$dir" >bin/scontrol
chmod +x bin/scontrol
export PATH="$dir/bin:$PATH" SLURM_JOB_ID=4242 SLURM_JOB_NAME=osprey-test OSPREY_BIN=$osprey
fail() {
  echo "FAIL: $*"
  exit 1
}
launcher=(sh -c 'echo $$ >osprey.pid; exec "$@"' launcher)
args=("$@" --set epochs=2 --set log_every_steps=1 --set plot=false)

bash "$repo/jobs/train_or_resume.sh" "${launcher[@]}" -- "${args[@]}" >first.log 2>&1 &
job=$!
for _ in $(seq 1200); do
  [ -f runs/osprey-test_4242/steps.jsonl ] && [ "$(wc -l <runs/osprey-test_4242/steps.jsonl)" -ge 3 ] && break
  sleep 0.1
done
kill -USR1 "$(cat osprey.pid)"
wait $job
rc=$?
cat first.log
[ $rc -eq 0 ] || fail "the stopped job exited $rc, expected 0 after requeueing"
[ "$(cat requeued 2>/dev/null)" = "requeue 4242" ] || fail "scontrol was not asked to requeue job 4242"
grep -q "stopped by SIGUSR1" first.log || fail "no stop message"

bash "$repo/jobs/train_or_resume.sh" "${launcher[@]}" -- "${args[@]}" >second.log 2>&1
rc=$?
cat second.log
[ $rc -eq 0 ] || fail "the requeued job exited $rc"
grep -q "resuming runs/osprey-test_4242" second.log || fail "the requeued job did not resume"
[ "$(wc -l <runs/osprey-test_4242/metrics.jsonl)" -eq 2 ] || fail "the resumed run did not finish both epochs"
[ "$(wc -l <requeued)" -eq 1 ] || fail "a finished job requeued itself"
echo "stopped, requeued and resumed"
