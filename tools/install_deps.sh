#!/usr/bin/env bash
# Installs the Debian packages Osprey builds, tests and trains with (see shared/DESIGN.md).
# Idempotent: does nothing when every package is already installed. Needs root (or sudo).
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config
  libopenblas-openmp-dev nlohmann-json3-dev libstb-dev libcpp-httplib-dev libcli11-dev
  zlib1g-dev catch2 libopenmpi-dev openmpi-bin gnuplot-nox dataset-fashion-mnist
  chromium python3  # the browser test of osprey serve's page (python3 writes its PNG)
)
# Node drives Chromium in that test (playwright-core from npm); any Node >= 18 will do.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
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
# playwright-core, pinned by tests/e2e/package-lock.json (no browser download: it drives
# Debian's chromium).
e2e="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
if [ ! -d "$e2e/node_modules/playwright-core" ]; then
  echo "install_deps: npm ci in tests/e2e"
  (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
fi
