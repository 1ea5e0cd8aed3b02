#!/usr/bin/env bash
# Usage: cli_expect.sh EXIT_CODE PATTERN COMMAND...
# Runs COMMAND; passes when its exit code is EXIT_CODE ("nonzero" = anything but 0) and its
# combined output matches the extended regex PATTERN. Runs in a fresh temporary directory.
set -u
want=$1 pattern=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$(cd "$dir" && "$@" 2>&1)
rc=$?
echo "$out"
echo "[exit $rc]"
if [ "$want" = nonzero ]; then
  [ "$rc" -ne 0 ] || { echo "expected a non-zero exit"; exit 1; }
else
  [ "$rc" -eq "$want" ] || { echo "expected exit $want"; exit 1; }
fi
grep -Eq -- "$pattern" <<<"$out" || { echo "output does not match: $pattern"; exit 1; }
