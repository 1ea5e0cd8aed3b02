#!/usr/bin/env bash
# Installs the Debian packages Osprey builds, tests and trains with (see shared/DESIGN.md).
# Idempotent: does nothing when every package is already installed. Needs root (or sudo).
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config
  libopenblas-openmp-dev nlohmann-json3-dev libstb-dev libcpp-httplib-dev libcli11-dev
  zlib1g-dev catch2 libopenmpi-dev openmpi-bin gnuplot-nox dataset-fashion-mnist
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install_deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
