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
  libcurl4-openssl-dev libarchive-dev libssl-dev  # osprey data get: downloads, unpacking, SHA-256
  libfreetype-dev  # osprey data typefaces renders glyphs
  # osprey data typefaces' fonts: 298 with all 94 ASCII glyphs, 86 MB (docs/typefaces.md)
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf fonts-urw-base35
  fonts-croscore fonts-crosextra-carlito fonts-crosextra-caladea fonts-open-sans fonts-cantarell
  fonts-roboto-unhinted fonts-linuxlibertine fonts-go fonts-hack fonts-noto-mono fonts-ebgaramond
  fonts-oldstandard fonts-comfortaa fonts-quicksand fonts-league-spartan fonts-jura fonts-cabin
  fonts-play fonts-karla fonts-averia-gwf fonts-averia-sans-gwf fonts-averia-serif-gwf fonts-3270
  fonts-mononoki fonts-anonymous-pro fonts-inconsolata fonts-tuffy fonts-yanone-kaffeesatz
  fonts-fanwood fonts-goudybookletter fonts-isabella fonts-dkg-handwriting fonts-humor-sans
  fonts-sil-gentium fonts-stix fonts-jetbrains-mono fonts-clear-sans
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
# npm_ci_pinned DIR PACKAGE [NPM_FLAG...]: npm ci in tests/DIR unless PACKAGE is installed there
# at the version its package-lock.json pins; installed again when the pin changes.
tests="$(cd "$(dirname "$0")/.." && pwd)/tests"
npm_ci_pinned() {
  local dir="$tests/$1" package=$2
  shift 2
  local pinned installed
  pinned=$(node -p "require('$dir/package-lock.json').packages['node_modules/$package'].version")
  installed=$(node -p "try { require('$dir/node_modules/$package/package.json').version } catch (e) { '' }")
  if [ "$installed" != "$pinned" ]; then
    echo "install_deps: npm ci in tests/${dir##*/} ($package $pinned)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error "$@")
  fi
}
# playwright-core (no browser download: it drives Debian's chromium).
npm_ci_pinned e2e playwright-core
# onnxruntime-node for the ONNX export test (CPU). --ignore-scripts: its install script fetches
# CUDA binaries from a host outside npm; the CPU binaries ship in the package itself.
npm_ci_pinned onnx_runtime onnxruntime-node --ignore-scripts
