# Extra simple_cnn references (other channel / class counts / sizes) made with the shared
# shared/golden/make_golden.py code. Usage: /usr/bin/python3 make_extra_golden.py SHARED_GOLDEN OUTDIR
import os
import sys

import torch

sys.path.insert(0, sys.argv[1])
from make_golden import SimpleCNN, make  # noqa: E402

out = sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(10)
make("simple_cnn_c3_k7_b3_12", SimpleCNN(3, 7, 12), torch.randn(3, 3, 12, 12),
     torch.tensor([6, 0, 3]), out, dict(model="simple_cnn", in_channels=3, classes=7, batch=3, hw=12))
torch.manual_seed(11)
make("simple_cnn_c1_k94_b5_16", SimpleCNN(1, 94, 16), torch.randn(5, 1, 16, 16),
     torch.tensor([93, 0, 47, 5, 12]), out,
     dict(model="simple_cnn", in_channels=1, classes=94, batch=5, hw=16))


def make_optim(name, model, opt_factory, xs, ys, meta):
    """Like make_golden.make_adam, for any torch.optim optimizer (3 steps, float64)."""
    from make_golden import save_file
    import torch.nn as nn
    model = model.float()
    t = {("param." + k): v.detach().clone().float().contiguous() for k, v in model.state_dict().items()}
    md = model.double()
    opt = opt_factory(md.parameters())
    for i, (x, y) in enumerate(zip(xs, ys)):
        t[f"input.{i}"] = x.float()
        t[f"labels.{i}"] = y.long()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(md(x.double()), y)
        loss.backward()
        opt.step()
        t[f"ref.loss.{i}"] = loss.detach().reshape(1)
    for k, p in md.named_parameters():
        t["after." + k] = p.detach().contiguous()
    t = {k: (v.float() if v.dtype == torch.float64 else v) for k, v in t.items()}
    save_file(t, os.path.join(out, name + ".safetensors"), metadata={k: str(v) for k, v in meta.items()})
    print(name, "done")


torch.manual_seed(12)
make_optim("simple_cnn_sgd_nesterov3", SimpleCNN(2, 5, 8),
           lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
           [torch.randn(6, 2, 8, 8) for _ in range(3)], [torch.randint(0, 5, (6,)) for _ in range(3)],
           dict(model="simple_cnn", optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4))
torch.manual_seed(13)
make_optim("simple_cnn_adamw3", SimpleCNN(2, 5, 8),
           lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
           [torch.randn(6, 2, 8, 8) for _ in range(3)], [torch.randint(0, 5, (6,)) for _ in range(3)],
           dict(model="simple_cnn", optimizer="adamw", lr=1e-3, weight_decay=0.01))

# MobileNetV2 at other widths, class counts and input sizes (shared/golden has w1.0 CIFAR stem
# and w0.5 ImageNet stem).
from make_golden import mnv2  # noqa: E402

torch.manual_seed(20)
make("mnv2_cifar_w0.35_c3_b2_40", mnv2(3, 0.35, True), torch.randn(2, 3, 40, 40),
     torch.tensor([2, 0]), out, dict(model="mobilenet_v2_cifar", width=0.35, classes=3, batch=2, hw=40))
torch.manual_seed(21)
make("mnv2_w0.25_c100_b3_48", mnv2(100, 0.25, False), torch.randn(3, 3, 48, 48),
     torch.tensor([99, 7, 42]), out, dict(model="mobilenet_v2", width=0.25, classes=100, batch=3, hw=48))
