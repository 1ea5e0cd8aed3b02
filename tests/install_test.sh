#!/usr/bin/env bash
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
# Osprey as a library a user installs: `cmake --install` into a temporary prefix, then
# examples/custom_cnn, copied outside the repository, is built from a clean folder against that
# prefix alone, once with find_package(Osprey) and once with pkg-config's flags, and both train
# a few hundred Fashion-MNIST batches to a sane test accuracy.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
"$tmp/prefix/bin/osprey" --version

cp -r "$src/examples/custom_cnn" "$tmp/custom_cnn"
cmake -S "$tmp/custom_cnn" -B "$tmp/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/cmake-build" >"$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config's output is a list of words
c++ -std=c++17 -O2 "$tmp/custom_cnn/main.cpp" -o "$tmp/custom_cnn_pkgconfig" \
  $(pkg-config --cflags --libs osprey)

# 300 batches of 64 (a third of an epoch): about 84%; a broken build or training stays near 10%.
for program in "$tmp/cmake-build/custom_cnn" "$tmp/custom_cnn_pkgconfig"; do
  out=$("$program" /usr/share/datasets/fashion-mnist 300)
  echo "$(basename "$program"): $out"
  accuracy=$(sed -n 's/^test accuracy \([0-9.]*\)% on 10000 images$/\1/p' <<<"$out")
  [ -n "$accuracy" ] || { echo "FAIL: no accuracy line"; exit 1; }
  awk -v a="$accuracy" 'BEGIN { exit !(a > 75) }' || { echo "FAIL: accuracy $accuracy% <= 75%"; exit 1; }
done
