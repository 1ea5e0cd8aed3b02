#!/usr/bin/env bash
# Everything a GPU session checks and measures, in phases that each fit one 10-minute device
# command, run from a checkout on the GPU machine. Where that machine cannot build (no Debian
# -dev packages), build on a CPU machine with CUDA and copy over, into BIN, build/osprey,
# build/tests/test_cuda, test_gpu, test_dist_gpu and build/bench/bench_depthwise, and into BIN/lib
# the libraries `ldd` shows it lacks (OpenBLAS, libgfortran, ...; not CUDA, NCCL or MPI, which must
# be the GPU machine's own); the Fashion-MNIST files go to DATA. Then e.g.
#   BIN=/tmp/d DATA=/tmp/fashion-mnist bash bench/gpu_session.sh tests
# Phases: tests (GPU test binaries), verify (golden files, f32 and bf16), kernels (depthwise
# vs cuDNN), train (throughput and memory vs PyTorch, profile, inference, GPU loader),
# fmnist [precision] (the 15-epoch accuracy run). Output goes to $OUT (or ./gpu_out).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-/tmp/d}
OUT=${OUT:-gpu_out}
GOLDEN=tests/golden
DATA=${DATA:-.device/data}
if [[ ! "${1:-}" =~ ^(tests|verify|kernels|train|fmnist)$ ]]; then
  echo "usage: bench/gpu_session.sh tests|verify|kernels|train|fmnist [f32|bf16]" >&2
  exit 2
fi
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
osprey=("$BIN/osprey")
step() { echo "== $*" | tee -a "$OUT/log.txt"; }

case "${1:-}" in
  tests)
    step test_cuda; "$BIN/test_cuda" > "$OUT/test_cuda.txt" 2>&1; echo "rc=$?" >> "$OUT/test_cuda.txt"
    step test_gpu; (cd "$OUT" && "$BIN/test_gpu" > test_gpu.txt 2>&1; echo "rc=$?" >> test_gpu.txt)
    step test_dist_gpu np1; mpirun --allow-run-as-root -np 1 -x LD_LIBRARY_PATH "$BIN/test_dist_gpu" \
      > "$OUT/test_dist_gpu_np1.txt" 2>&1
    step test_dist_gpu np2; OSPREY_SHARE_GPUS=1 mpirun --allow-run-as-root --oversubscribe -np 2 \
      -x LD_LIBRARY_PATH -x OSPREY_SHARE_GPUS "$BIN/test_dist_gpu" > "$OUT/test_dist_gpu_np2.txt" 2>&1
    tail -n 3 "$OUT"/test_*.txt
    ;;
  verify)
    for g in simple_cnn_c1_k10_b4_28 mnv2_w0.5_c10_b2_64 mnv2_cifar_w1.0_c10_b4_32; do
      step verify "$g"; "${osprey[@]}" verify "$GOLDEN/$g" --device cuda > "$OUT/verify_$g.txt" 2>&1
      [[ $g == mnv2* ]] && "${osprey[@]}" verify "$GOLDEN/$g" --device cuda --dtype bf16 \
        > "$OUT/verify_bf16_$g.txt" 2>&1
    done
    grep -H verdict "$OUT"/verify_*.txt
    ;;
  kernels)
    step depthwise vs cudnn
    python3 bench/depthwise_vs_cudnn.py --bench "$BIN/bench_depthwise" > "$OUT/depthwise_vs_cudnn.jsonl"
    ;;
  train)
    step torch vs osprey
    python3 bench/torch_vs_osprey_gpu.py --osprey "$BIN/osprey" > "$OUT/torch_vs_osprey_gpu.jsonl"
    step profile
    "${osprey[@]}" bench train --device cuda --model mobilenet_v2 --channels 3 --size 224 --batch 256 \
      --steps 10 --tf32 --profile > "$OUT/profile_224.json"
    step inference
    "${osprey[@]}" bench inference --device cuda --batch 512 > "$OUT/inference.jsonl"
    "${osprey[@]}" bench inference --device cuda --model mobilenet_v2 --size 224 --batch 256 \
      >> "$OUT/inference.jsonl"
    step gpu loader
    for dev in cpu cuda; do
      "${osprey[@]}" bench loader --config configs/cifar10_mobilenet_v2_224.json \
        --set dataset=fashion-mnist --set data_dir="$DATA" --set channels=3 --set mean=[0.286] \
        --set std=[0.353] --set augment_device=$dev --batches 20 >> "$OUT/loader_224.jsonl"
    done
    python3 bench/torch_bf16_reference_error.py --device cuda "$GOLDEN/mnv2_w0.5_c10_b2_64" \
      "$GOLDEN/mnv2_cifar_w1.0_c10_b4_32" "$GOLDEN/mnv2_cifar_w0.35_c3_b2_40" \
      "$GOLDEN/mnv2_w0.25_c100_b3_48" > "$OUT/torch_bf16_reference_error.jsonl"
    ;;
  fmnist)
    step fmnist "${2:-f32}"
    "${osprey[@]}" train --config configs/fmnist_mobilenet_v2_cifar.json --set device=cuda \
      --set data_dir="$DATA" --set tf32=true --set precision="${2:-f32}" --set progress=false \
      --set runs_dir="$OUT/runs" > "$OUT/fmnist_${2:-f32}.txt" 2>&1
    tail -n 3 "$OUT/fmnist_${2:-f32}.txt"
    ;;
esac
