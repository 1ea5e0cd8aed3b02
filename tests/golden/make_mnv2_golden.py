# MobileNetV2 references whose fp32 evaluation is well conditioned: with float64 ReLU6
# pre-activations, any value within rounding distance of a clamp boundary (0 or 6) can land on
# the other side in float32, which flips that element's gradient mask; BatchNorm backward then
# spreads the flip over the whole channel. PyTorch fp32 itself misses the golden gradient
# tolerance on shared/golden/mnv2_cifar_w1.0_c10_b4_32 for this reason (6 such elements).
# This script searches seeds until every ReLU6 pre-activation is at least MARGIN from both
# boundaries, so an fp32 engine's gradients can be held to the 1e-3 tolerance.
# Usage: /usr/bin/python3 make_mnv2_golden.py SHARED_GOLDEN OUTDIR
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, sys.argv[1])
from make_golden import make, mnv2  # noqa: E402

MARGIN = 3e-5
out = sys.argv[2]
os.makedirs(out, exist_ok=True)


def min_margin(model, x):
    pre = []
    hooks = [m.register_forward_pre_hook(lambda mo, i: pre.append(i[0].detach().clone()))
             for m in model.modules() if isinstance(m, nn.ReLU6)]
    model.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return min(float(torch.minimum(p.abs(), (p - 6).abs()).min()) for p in pre)


def search(name, classes, width, cifar, batch, hw, first_seed):
    for seed in range(first_seed, first_seed + 200):
        torch.manual_seed(seed)
        model = mnv2(classes, width, cifar)
        x = torch.randn(batch, 3, hw, hw)
        y = torch.randint(0, classes, (batch,))
        # make() randomises BatchNorm with its own generator; reproduce that before measuring.
        from make_golden import randomize_bn
        probe = mnv2(classes, width, cifar)
        probe.load_state_dict(model.state_dict())
        randomize_bn(probe, torch.Generator().manual_seed(1234))
        margin = min_margin(probe.double(), x.double())
        if margin > MARGIN:
            print(name, "seed", seed, "margin", margin)
            make(name, model, x, y, out, dict(model="mobilenet_v2_cifar" if cifar else "mobilenet_v2",
                                              width=width, classes=classes, batch=batch, hw=hw))
            return
    raise SystemExit(name + ": no seed with a safe margin")


search("mnv2_cifar_w0.25_c7_b2_32", 7, 0.25, True, 2, 32, 100)
search("mnv2_w0.35_c5_b2_48", 5, 0.35, False, 2, 48, 300)
