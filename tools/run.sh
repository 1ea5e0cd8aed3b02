#!/usr/bin/env bash
# The main job: install what is missing, build, and train the default model (simple_cnn on
# Fashion-MNIST). Extra arguments go to `osprey train` (e.g. --set epochs=2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
exec ./build/osprey train "$@"
