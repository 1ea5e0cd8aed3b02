#!/usr/bin/env python3
"""PyTorch's own bf16 autocast error on the golden references: what `osprey verify --dtype bf16`
is compared with. Loads PREFIX.params/.ref.safetensors (tests/golden), runs torchvision's
MobileNetV2 with torch.autocast(bfloat16) on the given device, and prints one JSON line per
reference with the relative L2 error of each quantity against the float64 reference, measured
as `osprey verify` measures it (parameter gradients relative to the norm of all of them).

usage: bench/torch_bf16_reference_error.py [--device cpu|cuda] PREFIX...
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_models import load_safetensors, mobilenet_v2  # noqa: E402


def rel(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def check(prefix, device):
    params, meta = load_safetensors(prefix + ".params.safetensors")
    ref, _ = load_safetensors(prefix + ".ref.safetensors")
    m = mobilenet_v2(int(meta["classes"]), float(meta["width"]),
                     cifar=meta["model"] == "mobilenet_v2_cifar")
    m.load_state_dict(params)
    m = m.to(device)
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    x = ref["input"].to(device)
    labels = ref["labels"].to(device)
    r = {"reference": prefix.split("/")[-1], "engine": "pytorch " + torch.__version__,
         "device": device, "dtype": "bf16 autocast"}
    m.eval()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        r["eval_logits"] = rel(m(x).float().cpu(), ref["ref.eval_logits"])
    m.train()
    xr = x.clone().requires_grad_(True)
    with torch.autocast(device, dtype=torch.bfloat16):
        logits = m(xr)
        loss = nn.functional.cross_entropy(logits.float(), labels)
    r["train_logits"] = rel(logits.float().detach().cpu(), ref["ref.train_logits"])
    r["loss"] = rel(loss.detach().reshape(1).cpu(), ref["ref.loss"])
    r["max_running_stat"] = max(rel(b.float().cpu(), ref["after_train_forward." + k])
                                for k, b in m.named_buffers() if b.dtype != torch.int64)
    try:
        loss.backward()
    except RuntimeError as e:  # PyTorch 1.13's CPU has no bf16 hardtanh backward
        r["gradients"] = "not available: " + str(e).splitlines()[0]
        return r
    r["grad_input"] = rel(xr.grad.cpu(), ref["ref.grad_input"])
    norm = torch.sqrt(sum((ref["grad." + k].double() ** 2).sum() for k, _ in m.named_parameters()))
    r["max_param_grad"] = max(((p.grad.double().cpu() - ref["grad." + k].double()).norm() /
                               norm).item() for k, p in m.named_parameters())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("prefixes", nargs="+")
    a = ap.parse_args()
    for p in a.prefixes:
        print(json.dumps(check(p, a.device)), flush=True)


if __name__ == "__main__":
    main()
