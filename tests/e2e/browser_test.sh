#!/usr/bin/env bash
# End-to-end test of `osprey serve` in a real browser: trains a small model, starts the server
# on a free port, uploads a PNG of a Fashion-MNIST test image through the page in headless
# Chromium (serve_page_test.mjs) and requires the page's top-3 to be `osprey predict`'s.
# usage: tests/e2e/browser_test.sh OSPREY_BINARY [SCREENSHOT.png]
# (E2E_LIMIT_TRAIN=N trains on N images instead of 2048: a surer model for a screenshot.)
# Needs Debian's chromium and tests/e2e/node_modules (tools/install_deps.sh installs both).
set -euo pipefail
osprey=$(realpath "$1")
screenshot=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
data=/usr/share/datasets/fashion-mnist
[ -x /usr/bin/chromium ] || { echo "e2e: /usr/bin/chromium missing (bash tools/install_deps.sh)"; exit 1; }
[ -d "$here/node_modules/playwright-core" ] ||
  { echo "e2e: playwright-core missing (bash tools/install_deps.sh)"; exit 1; }
tmp=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true  # its SIGTERM status is not the test's
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$osprey" train --set limit_train="${E2E_LIMIT_TRAIN:-2048}" --set limit_test=256 --set epochs=1 --set threads=2 \
  --set progress=false --set device=cpu --set runs_dir="$tmp/runs" --set name=e2e >/dev/null

# Test image 0 of Fashion-MNIST as an 8-bit grayscale PNG (zlib and struct only).
python3 - "$data/t10k-images-idx3-ubyte.gz" "$tmp/image.png" <<'PY'
import gzip, struct, sys, zlib
raw = gzip.open(sys.argv[1]).read()[16:16 + 28 * 28]
rows = b"".join(b"\x00" + raw[r * 28:(r + 1) * 28] for r in range(28))
def chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) +
       chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[2], "wb").write(png)
PY

"$osprey" predict --checkpoint "$tmp/runs/e2e" --device cpu --top-k 3 "$tmp/image.png" \
  > "$tmp/predict.txt"

"$osprey" serve --checkpoint "$tmp/runs/e2e" --device cpu --port 0 > "$tmp/serve.log" 2>&1 &
server=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*/' "$tmp/serve.log" || true)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "e2e: the server did not start"; cat "$tmp/serve.log"; exit 1; }

node "$here/serve_page_test.mjs" "$url" "$tmp/image.png" $screenshot > "$tmp/page.json"

python3 - "$tmp/predict.txt" "$tmp/page.json" <<'PY'
import json, re, sys
expected = [(m.group(1).strip(), float(m.group(2)))
            for m in re.finditer(r"^  (.+?)\s+([0-9.]+)%$", open(sys.argv[1]).read(), re.M)]
page = json.load(open(sys.argv[2]))
got = [(r["class"], r["percent"]) for r in page["rows"]]
print("osprey predict:", expected)
print("page:          ", got, "|", page["status"])
assert len(expected) == 3, "predict printed %d classes" % len(expected)
assert not page["errors"], "JavaScript errors on the page: %s" % page["errors"]
assert "simple_cnn" in page["model"], "model line: %r" % page["model"]
assert [c for c, _ in got] == [c for c, _ in expected], "top-3 classes differ"
for (c, p), (_, q) in zip(got, expected):
    assert abs(p - q) <= 0.051, "%s: page %.1f%%, predict %.2f%%" % (c, p, q)
print("e2e: the page's top-3 equals osprey predict's")
PY
