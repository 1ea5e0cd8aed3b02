#!/usr/bin/env bash
# CPU roofline of training: for each model, `osprey bench gemm` measures the machine's fp32
# GEMM peak (a 2048^3 sgemm) and records every GEMM of a training step; this prints, as
# markdown, each GEMM shape's GFLOP/s and share of that peak and the whole step's figures.
# usage: bench/cpu_roofline.sh [-t THREADS] [-b BATCH] [-s STEPS]   (OSPREY=path/to/osprey)
set -euo pipefail
threads=2 batch=64 steps=5
while getopts "t:b:s:" opt; do
  case $opt in
    t) threads=$OPTARG ;; b) batch=$OPTARG ;; s) steps=$OPTARG ;; *) sed -n 2,6p "$0"; exit 2 ;;
  esac
done
osprey=${OSPREY:-build/osprey}
[ -x "$osprey" ] || { echo "cpu_roofline.sh: no osprey binary at $osprey (build first)" >&2; exit 1; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores;" \
  "ISA: $(grep -m1 '^flags' /proc/cpuinfo | grep -oE 'avx512f|avx512_bf16|avx512_vnni|avx2|fma' | sort -u | tr '\n' ' ')"
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for spec in "simple_cnn 1 28" "mobilenet_v2_cifar 3 32"; do
  read -r model channels size <<<"$spec"
  "$osprey" bench gemm --model "$model" --channels "$channels" --size "$size" --batch "$batch" \
    --threads "$threads" --steps "$steps" >>"$lines"
done
python3 - "$lines" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peak = next(l for l in lines if l["bench"] == "gemm_peak")
print(f"\nmeasured peak: {peak['gflops']:.0f} GFLOP/s (sgemm {peak['shape'][0]}^3, {peak['threads']} threads)")
for step in (l for l in lines if l["bench"] == "gemm_step"):
    model = step["model"]
    print(f"\n### {model}, batch {step['batch']}, {step['threads']} threads: {step['images_per_s']:.0f} images/s;"
          f" GEMMs {100 * step['gemm_share']:.0f}% of the step at {step['gemm_gflops']:.0f} GFLOP/s"
          f" ({100 * step['gemm_of_peak']:.0f}% of peak)\n")
    print("| M x N x K | op | calls/step | ms/step | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|")
    shapes = [l for l in lines if l["bench"] == "gemm_shape" and l["model"] == model]
    for s in sorted(shapes, key=lambda s: -s["ms_per_step"]):
        print(f"| {s['m']} x {s['n']} x {s['k']} | {s['trans']} | {s['calls_per_step']:g} |"
              f" {s['ms_per_step']:.2f} | {s['gflops']:.0f} | {100 * s['of_peak']:.0f}% |")
PY
