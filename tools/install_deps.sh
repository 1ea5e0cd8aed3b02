#!/usr/bin/env bash
# Installs the Debian packages Osprey builds, tests and trains with (docs/architecture.md).
# Idempotent: does nothing when every package is already installed. Needs root (or sudo).
# usage: tools/install_deps.sh [EXTRA_PACKAGE...]   (e.g. the sanitizer build's clang)
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config
  libdnnl-dev nlohmann-json3-dev libcli11-dev
  libpng-dev libturbojpeg0-dev  # data/image.cpp decodes PNG and JPEG with them
  libzip-dev  # engine/pth.cpp reads PyTorch .pth files, which are zip archives
  libonnx-dev libprotobuf-dev  # interop/: ONNX export and ONNX's operator tests
  python3-onnx libonnx-testdata  # onnx.checker on exported files; ONNX's own node tests
  zlib1g-dev catch2 libopenmpi-dev openmpi-bin gnuplot-nox dataset-fashion-mnist
  chromium python3  # the browser test of osprey serve's page (python3 writes its PNG)
)
# Node drives Chromium in that test (playwright-core from npm): Debian 12's nodejs (18) and npm,
# or any Node >= 18 already on the machine.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
packages+=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "install_deps: $(command -v node) is Node $(node --version); the browser test needs Node >= 18" >&2
  exit 1
fi
# playwright-core at the version tests/e2e/package-lock.json pins (no browser download: it
# drives Debian's chromium); installed again when the pin changes.
e2e="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
pinned=$(node -p "require('$e2e/package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(node -p "try { require('$e2e/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$installed" != "$pinned" ]; then
  echo "install_deps: npm ci in tests/e2e (playwright-core $pinned)"
  (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
fi
