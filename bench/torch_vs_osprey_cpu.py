#!/usr/bin/env python3
"""Times training steps (forward, cross-entropy, backward, Adam) on synthetic data in PyTorch
and in `osprey bench train`, with the same model, batch, thread count and step count, and
prints both figures and their ratio as JSON lines. Run with Debian's /usr/bin/python3 (torch,
torchvision). Models: simple_cnn (1x28x28) and mobilenet_v2_cifar
(torchvision's mobilenet_v2 with the CIFAR stem, 3x32x32).

usage: bench/torch_vs_osprey_cpu.py [--model simple_cnn] [--osprey build/osprey] [--batch 64]
                                    [--threads 2] [--steps 50] [--warmup 5] [--repeats 3]
Repeats alternate the two engines and report the median of each, so both see the same machine
conditions.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_models import SimpleCNN, mobilenet_v2  # noqa: E402

MODELS = {"simple_cnn": (1, 28), "mobilenet_v2_cifar": (3, 32)}


def make_model(name, channels, size, classes):
    if name == "simple_cnn":
        return SimpleCNN(channels, classes, size)
    return mobilenet_v2(classes, cifar=True)


def torch_images_per_s(name, batch, steps, warmup, classes=10):
    channels, size = MODELS[name]
    model = make_model(name, channels, size, classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def osprey_images_per_s(binary, name, batch, threads, steps, warmup):
    channels, size = MODELS[name]
    out = subprocess.run([binary, "bench", "train", "--model", name, "--batch", str(batch),
                          "--threads", str(threads), "--steps", str(steps), "--warmup",
                          str(warmup), "--channels", str(channels), "--size", str(size)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="simple_cnn", choices=sorted(MODELS))
    p.add_argument("--osprey", default="build/osprey")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ours, theirs = [], []
    for _ in range(a.repeats):
        theirs.append(torch_images_per_s(a.model, a.batch, a.steps, a.warmup))
        ours.append(osprey_images_per_s(a.osprey, a.model, a.batch, a.threads, a.steps, a.warmup))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(json.dumps({"engine": "pytorch", "version": torch.__version__, "model": a.model,
                      "batch": a.batch, "threads": a.threads, "images_per_s": round(t, 1),
                      "runs": [round(v, 1) for v in theirs]}))
    print(json.dumps({"engine": "osprey", "model": a.model, "batch": a.batch,
                      "threads": a.threads, "images_per_s": round(o, 1),
                      "runs": [round(v, 1) for v in ours]}))
    print(json.dumps({"osprey_over_pytorch": round(o / t, 3)}))


if __name__ == "__main__":
    main()
