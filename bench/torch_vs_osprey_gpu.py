#!/usr/bin/env python3
"""Training throughput on one GPU, PyTorch against `osprey bench train --device cuda`, in the
same run on the same card: torchvision MobileNetV2 (ImageNet stem at 224, or the CIFAR stem at
32), synthetic inputs, cross-entropy, backward, Adam. PyTorch runs channels_last with
cudnn.benchmark, in fp32 and with bf16 autocast; Osprey runs fp32, without and with TF32
GEMMs, TF32 with recompute_activations, and bf16 activations without and with it. Prints one JSON line per measurement, then one per workload with Osprey's ratio to each PyTorch mode.

usage: bench/torch_vs_osprey_gpu.py [--osprey build/osprey] [--steps 30] [--warmup 5]
                                    [--workloads mobilenet_v2:224:256,mobilenet_v2_cifar:32:512]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_models import mobilenet_v2  # noqa: E402


def make_model(name, classes):
    return mobilenet_v2(classes, cifar=name == "mobilenet_v2_cifar")


def torch_run(name, size, batch, steps, warmup, bf16, classes=10):
    torch.backends.cudnn.benchmark = True
    model = make_model(name, classes).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model, opt, x, y
    torch.cuda.empty_cache()
    return {"engine": "pytorch " + torch.__version__, "dtype": "bf16 autocast" if bf16 else "f32",
            "model": name, "size": size, "batch": batch, "steps": steps,
            "images_per_s": batch * steps / seconds, "ms_per_step": 1e3 * seconds / steps,
            "peak_device_memory_mb": peak}


def osprey_run(binary, name, size, batch, steps, warmup, tf32, recompute=False, dtype="f32",
               classes=10):
    cmd = [binary, "bench", "train", "--device", "cuda", "--model", name, "--channels", "3",
           "--size", str(size), "--batch", str(batch), "--classes", str(classes), "--steps",
           str(steps), "--warmup", str(warmup), "--dtype", dtype] + \
          (["--tf32"] if tf32 else []) + (["--recompute"] if recompute else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["engine"] = "osprey"
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osprey", default="build/osprey")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workloads", default="mobilenet_v2:224:256,mobilenet_v2_cifar:32:512")
    a = ap.parse_args()
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "torchvision": torchvision.__version__}), flush=True)
    for w in a.workloads.split(","):
        name, size, batch = w.split(":")
        size, batch = int(size), int(batch)
        ours = {}
        # fp32, TF32 GEMMs, TF32 with the blocks' hidden activations recomputed, and bf16
        # activations (without and with recomputation).
        for label, tf32, recompute, dtype in (("f32", False, False, "f32"),
                                              ("f32_tf32", True, False, "f32"),
                                              ("f32_tf32_recompute", True, True, "f32"),
                                              ("bf16", False, False, "bf16"),
                                              ("bf16_recompute", False, True, "bf16")):
            r = osprey_run(a.osprey, name, size, batch, a.steps, a.warmup, tf32, recompute, dtype)
            ours[label] = r
            print(json.dumps(r), flush=True)
        theirs = {}
        for bf16 in (False, True):
            r = torch_run(name, size, batch, a.steps, a.warmup, bf16)
            theirs[r["dtype"]] = r
            print(json.dumps(r), flush=True)
        print(json.dumps({"workload": w, **{
            "osprey_%s_vs_pytorch_%s" % (o, k.replace(" ", "_")):
                round(ro["images_per_s"] / v["images_per_s"], 3)
            for o, ro in ours.items() for k, v in theirs.items()}}), flush=True)


if __name__ == "__main__":
    main()
