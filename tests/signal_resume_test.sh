#!/usr/bin/env bash
# Usage: signal_resume_test.sh OSPREY [TRAIN_ARGS...]
# A training interrupted by SIGINT in the middle of epoch 1, then resumed, ends bit for bit where
# an uninterrupted one does (every tensor of last.safetensors, every metrics value but the
# timings); SIGINT exits 130 and prints where it stopped. Then a second run gets SIGTERM twice
# right after its first epoch: it exits 143 at once and still resumes to the same end.
set -u
osprey=$1
shift
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"
args=("$@" --set epochs=2 --set log_every_steps=1 --set plot=false)
fail() {
  echo "FAIL: $*"
  for log in *.log; do echo "== $log"; cat "$log"; done
  exit 1
}

# Waits (at most 120 s) until FILE has at least N lines.
wait_lines() {
  local file=$1 n=$2
  for _ in $(seq 1200); do
    [ -f "$file" ] && [ "$(wc -l <"$file")" -ge "$n" ] && return 0
    sleep 0.1
  done
  fail "$file never reached $n lines"
}

# The tensor bytes of a safetensors file (its header holds timings, which differ between runs).
tensor_bytes_digest() {
  python3 - "$1" <<'PY'
import hashlib, json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
header.pop("__metadata__", None)
print(hashlib.sha256(json.dumps(header, sort_keys=True).encode() + data[8 + n:]).hexdigest())
PY
}

# metrics.jsonl without the fields that measure time.
metrics_without_timings() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    for k in ("time", "elapsed_s", "seconds", "images_per_s"):
        j.pop(k, None)
    print(json.dumps(j, sort_keys=True))
PY
}

"$osprey" train "${args[@]}" --name whole >whole.log 2>&1 || fail "the uninterrupted run failed: $(cat whole.log)"

"$osprey" train "${args[@]}" --name cut >cut.log 2>&1 &
pid=$!
wait_lines runs/cut/steps.jsonl 3
kill -INT $pid
wait $pid
rc=$?
cat cut.log
[ $rc -eq 130 ] || fail "SIGINT: exit $rc, expected 130"
grep -Eq "stopped by SIGINT at epoch 1/2, step [0-9]+/[0-9]+" cut.log || fail "no stop message"
grep -q "resume with \`osprey train --resume runs/cut\`" cut.log || fail "no resume hint"
[ ! -f runs/cut/metrics.jsonl ] || [ ! -s runs/cut/metrics.jsonl ] || fail "stopped within epoch 1 but metrics has a line"
"$osprey" train --resume cut >>cut.log 2>&1 || fail "resume failed: $(cat cut.log)"

"$osprey" train "${args[@]}" --name twice >twice.log 2>&1 &
pid=$!
wait_lines runs/twice/metrics.jsonl 1
kill -TERM $pid
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "SIGTERM twice: exit $rc, expected 143"
"$osprey" train --resume twice >>twice.log 2>&1 || fail "resume after SIGTERM failed: $(cat twice.log)"

want=$(tensor_bytes_digest runs/whole/last.safetensors)
for run in cut twice; do
  [ "$(tensor_bytes_digest runs/$run/last.safetensors)" = "$want" ] ||
    fail "$run: the resumed run's tensors differ from the uninterrupted run's"
  diff <(metrics_without_timings runs/whole/metrics.jsonl) <(metrics_without_timings runs/$run/metrics.jsonl) ||
    fail "$run: metrics differ from the uninterrupted run's"
done
echo "interrupted and resumed runs are identical to the uninterrupted one"
