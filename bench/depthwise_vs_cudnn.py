#!/usr/bin/env python3
"""Osprey's depthwise 3x3 kernels against cuDNN (through PyTorch, channels_last,
cudnn.benchmark) at every MobileNetV2 depthwise shape, in the same run on the same GPU.

Runs `bench_depthwise` (our kernels, fp32 and bf16 activations), then times PyTorch's depthwise
convolution (groups = channels) forward, input gradient and weight gradient at each of its
shapes in the same dtype (median of 21 runs after 5 warm-ups, CUDA events), and prints one
JSON line per shape, dtype and pass with both times and our speedup over cuDNN (> 1: ours is
faster).

usage: bench/depthwise_vs_cudnn.py [--bench build/bench/bench_depthwise]
"""
import argparse
import json
import statistics
import subprocess

import torch


def median_ms(fn, warmup=5, runs=21):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def cudnn_ms(n, h, w, c, stride, pass_, dtype):
    x = torch.randn(n, c, h, w, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
    wt = torch.randn(c, 1, 3, 3, device="cuda", dtype=dtype)
    y = torch.nn.functional.conv2d(x, wt, stride=stride, padding=1, groups=c)
    dy = torch.randn_like(y).to(memory_format=torch.channels_last)
    args = (dy, x, wt, None, [stride, stride], [1, 1], [1, 1], False, [0, 0], c)
    if pass_ == "fwd":
        return median_ms(lambda: torch.nn.functional.conv2d(x, wt, stride=stride, padding=1,
                                                            groups=c))
    mask = [True, False, False] if pass_ == "dgrad" else [False, True, False]
    return median_ms(lambda: torch.ops.aten.convolution_backward(*args, mask))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/bench_depthwise")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "cudnn": torch.backends.cudnn.version()}), flush=True)
    ours = subprocess.run([a.bench], check=True, capture_output=True, text=True).stdout
    for line in ours.strip().splitlines():
        r = json.loads(line)
        shape = (r["n"], r["h"], r["w"], r["c"], r["stride"])
        dtype = r.get("dtype", "f32")
        theirs = cudnn_ms(*shape, r["pass"], torch.bfloat16 if dtype == "bf16" else torch.float32)
        print(json.dumps({"shape": r["shape"], "pass": r["pass"], "dtype": dtype,
                          "osprey_ms": r["ms"], "osprey_gbps": r["gbps"],
                          "cudnn_ms": round(theirs, 4),
                          "speedup_vs_cudnn": round(theirs / r["ms"], 3)}), flush=True)


if __name__ == "__main__":
    main()
