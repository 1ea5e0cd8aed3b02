#!/usr/bin/env bash
# Load test of `osprey serve`: starts it on a free loopback port with a checkpoint, POSTs a PNG
# to /api/predict from 32 concurrent connections for a bounded time with wrk (Debian's wrk),
# polls /api/health throughout, and prints requests/s, p50/p99 latency and the error counts
# (a 503 "server busy" answer counts in errors(status); docs/serving.md lists the limits).
# usage: bench/serve_load.sh CHECKPOINT IMAGE.png [SECONDS=10] [CONNECTIONS=32]
#        (OSPREY=path/to/osprey)
set -euo pipefail
checkpoint=$1 image=$2 seconds=${3:-10} conns=${4:-32}
osprey=${OSPREY:-build/osprey}
command -v wrk >/dev/null || { echo "serve_load.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 20000))
"$osprey" serve --checkpoint "$checkpoint" --port "$port" >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open("$image", "rb"); wrk.body = f:read("*a"); f:close()
function done(summary, latency, requests)
  io.write(string.format("requests %d  errors(status) %d  errors(socket) %d\n", summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
  io.write(string.format("requests/s %.1f  p50 %.2f ms  p99 %.2f ms\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3))
end
LUA
health_fail=0
( end=$((SECONDS + seconds)); while [ $SECONDS -lt $end ]; do
    curl -sf -m 2 "http://127.0.0.1:$port/api/health" >/dev/null || echo fail >>"$dir/health"
    sleep 0.2; done ) &
poller=$!
wrk -t 2 -c "$conns" -d "${seconds}s" --timeout 10s -s "$dir/post.lua" \
  "http://127.0.0.1:$port/api/predict" | tail -n 2
wait $poller
[ -f "$dir/health" ] && health_fail=$(wc -l <"$dir/health")
echo "health checks failed during the load: $health_fail"
