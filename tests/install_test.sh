#!/usr/bin/env bash
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
# Osprey as a library a user installs: `cmake --install` into a temporary prefix, then every
# project in examples/, copied outside the repository, is built from a clean folder against that
# prefix alone (find_package(Osprey)), custom_cnn once more with pkg-config's flags; then
#  - custom_cnn (both builds) trains a few hundred Fashion-MNIST batches to a sane accuracy;
#  - classify labels five test images as the installed `osprey predict` does, with the same
#    checkpoint;
#  - depthwise_microbench passes every check of its kernels before timing them.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fashion=/usr/share/datasets/fashion-mnist
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
osprey=$tmp/prefix/bin/osprey
"$osprey" --version

for example in "$src"/examples/*/; do
  name=$(basename "$example")
  cp -r "$example" "$tmp/$name"
  cmake -S "$tmp/$name" -B "$tmp/$name-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
  cmake --build "$tmp/$name-build" >"$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
  echo "built examples/$name against the installed prefix"
done

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config's output is a list of words
c++ -std=c++17 -O2 "$tmp/custom_cnn/main.cpp" -o "$tmp/custom_cnn_pkgconfig" \
  $(pkg-config --cflags --libs osprey)
echo "built examples/custom_cnn with pkg-config --cflags --libs osprey"

# 300 batches of 64 (a third of an epoch): about 84%; a broken build or training stays near 10%.
for program in "$tmp/custom_cnn-build/custom_cnn" "$tmp/custom_cnn_pkgconfig"; do
  out=$("$program" "$fashion" 300)
  echo "$(basename "$program"): $out"
  accuracy=$(sed -n 's/^test accuracy \([0-9.]*\)% on 10000 images$/\1/p' <<<"$out")
  [ -n "$accuracy" ] || { echo "FAIL: no accuracy line"; exit 1; }
  awk -v a="$accuracy" 'BEGIN { exit !(a > 75) }' || { echo "FAIL: accuracy $accuracy% <= 75%"; exit 1; }
done

# depthwise_microbench at batch 2: 3 passes x 4 shapes, each checked before it is timed (the CPU
# kernels against a double loop, the CUDA kernels against the CPU's); the CUDA kernels run where
# the install has CUDA and nvidia-smi sees a GPU, and are skipped with a message elsewhere.
bench=$("$tmp/depthwise_microbench-build/depthwise_microbench" --batch 2 --repeats 3 --warmup 1) ||
  { echo "$bench"; echo "FAIL: depthwise_microbench exited non-zero"; exit 1; }
echo "$bench"
cuda_checks=0
if grep -q '^set(OSPREY_WITH_CUDA ON)' "$tmp/prefix/lib/cmake/Osprey/OspreyConfig.cmake" &&
  nvidia-smi -L >/dev/null 2>&1; then
  cuda_checks=12
fi
for device in cpu cuda; do
  want=$([ "$device" = cpu ] && echo 12 || echo "$cuda_checks")
  passed=$(grep -c "^validation passed: $device " <<<"$bench" || true)
  timed=$(grep -c "^$device .* GFLOP/s$" <<<"$bench" || true)
  if [ "$passed" -ne "$want" ] || [ "$timed" -ne "$want" ]; then
    echo "FAIL: $device: $passed checks passed and $timed timings, want $want of each"; exit 1
  fi
done
skipped='^cuda: \(no GPU present\|this Osprey was built without CUDA\)'
[ "$cuda_checks" -gt 0 ] || grep -q "$skipped" <<<"$bench" ||
  { echo "FAIL: depthwise_microbench did not say why it skipped the CUDA kernels"; exit 1; }
echo "depthwise_microbench: every kernel passed its check before it was timed"

# classify against osprey predict: five Fashion-MNIST test images as PNG files.
cd "$tmp"
"$osprey" train --set limit_train=512 --set limit_test=128 --set threads=1 --set progress=false \
  --set epochs=1 --set plot=false --name tiny >train.log 2>&1 || { cat train.log; exit 1; }
python3 - "$fashion/t10k-images-idx3-ubyte.gz" <<'PY'
import gzip, struct, sys, zlib
data = gzip.open(sys.argv[1]).read()
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
for i in range(5):
    pixels = data[16 + i * 784:16 + (i + 1) * 784]
    rows = b"".join(b"\x00" + pixels[r * 28:(r + 1) * 28] for r in range(28))
    with open("img%d.png" % i, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$tmp/classify-build/classify" runs/tiny img*.png >classify.txt
"$osprey" predict --checkpoint runs/tiny --top-k 1 img*.png >predict.txt
cat classify.txt
# predict: "imgN.png: ..." then "  CLASS  P%"; classify: "imgN.png CLASS P".
python3 - <<'PY'
import re
predict = open("predict.txt").read().split("\n")
want = {}
for i, line in enumerate(predict):
    m = re.match(r"^(img\d\.png):", line)
    if m:
        name, pct = re.match(r"^\s+(.*?)\s+([0-9.]+)%$", predict[i + 1]).groups()
        want[m.group(1)] = (name, float(pct))
got = []
for line in open("classify.txt").read().split("\n"):
    if line:
        path, rest = line.split(" ", 1)
        got.append((path,) + tuple(rest.rsplit(" ", 1)))
assert len(got) == 5 and len(want) == 5, (got, want)
for path, name, p in got:
    assert want[path][0] == name, (path, name, want[path])
    assert abs(100 * float(p) - want[path][1]) < 0.01, (path, p, want[path])
print("classify agrees with osprey predict on", len(got), "images")
PY
