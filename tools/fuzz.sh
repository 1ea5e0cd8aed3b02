#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/fuzz_*.cpp, built with clang, AddressSanitizer and UBSan
# into build-asan by tools/build_asan.sh) for SECONDS each (default 30), from seed corpora that
# tests/fuzz/make_seeds.py writes. Fails on the first finding: a crash, a sanitizer report, an
# exception other than osprey::Error, a leak, or an input that takes longer than 10 s. A finding
# is kept as build-asan/findings/<target>/crash-* (replay: build-asan/tests/fuzz/<target> FILE).
# usage: tools/fuzz.sh [SECONDS] [TARGET...]     e.g. tools/fuzz.sh 3600 fuzz_image   (a long run)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
bash tools/build_asan.sh
corpus=build-asan/corpus
rm -rf "$corpus"
python3 tests/fuzz/make_seeds.py "$corpus"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls build-asan/tests/fuzz | grep '^fuzz_' | sort)
export ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
for t in "${targets[@]}"; do
  findings=build-asan/findings/$t
  mkdir -p "$findings" "$corpus/$t"
  log=build-asan/findings/$t.log
  echo "== fuzz: $t for $seconds s"
  if ! build-asan/tests/fuzz/"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" "$corpus/$t" \
      > "$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t FOUND A DEFECT (input in $findings/)" >&2
    exit 1
  fi
  runs=$(awk '/^stat::number_of_executed_units/{print $2}' "$log")
  echo "fuzz: $t: ${runs:-?} executions in $seconds s, 0 findings"
done
