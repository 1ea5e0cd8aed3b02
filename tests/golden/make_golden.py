# Writes every PyTorch reference file in tests/golden (see README.md there for the format).
# The references are computed in float64 on the CPU and stored as float32 safetensors.
#
# usage: /usr/bin/python3 tests/golden/make_golden.py [OUTDIR] [--only NAME ...]
# Needs Debian 12's python3-torch (1.13) and python3-torchvision (0.14); nothing from the network.
import argparse
import copy
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from torch_models import SimpleCNN, mobilenet_v2, save_safetensors  # noqa: E402


def as_float32(tensors):
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}


def randomize_batchnorm(model):
    """BatchNorm affine parameters and running statistics away from 1/0, so that eval mode and
    folding are really tested."""
    g = torch.Generator().manual_seed(1234)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            m.running_mean.data = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var.data = 0.5 + torch.rand(m.running_var.shape, generator=g)


def without_dropout(model):
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


def judged_quantities(model, x, y):
    """What `osprey verify` judges, under its row names, from MODEL in its own dtype: eval logits
    (running statistics), then one train-mode forward and backward of the mean cross-entropy
    (dropout off), which also moves the running statistics."""
    q = {}
    model.eval()
    with torch.no_grad():
        q["eval_logits"] = model(x)
    without_dropout(model).train()
    xg = x.detach().clone().requires_grad_(True)
    logits = model(xg)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    q["train_logits"] = logits.detach()
    q["loss"] = loss.detach().reshape(1)
    q["grad_input"] = xg.grad
    q.update({"grad." + k: p.grad for k, p in model.named_parameters()})
    q.update({"after_train_forward." + k: b.detach() for k, b in model.named_buffers()
              if b.dtype != torch.int64})
    return q


def relative_errors(ours, ref):
    """Relative L2 error per quantity as `osprey verify` measures it against the float32-rounded
    reference, including its rule for gradients that are zero in exact arithmetic."""
    ref = {k: v.float().double() for k, v in ref.items()}
    all_grads = sum(float((v * v).sum()) for k, v in ref.items() if k.startswith("grad.")) ** 0.5
    errors = {}
    for k, r in ref.items():
        diff, norm = float((ours[k].double() - r).norm()), float(r.norm())
        if k.startswith("grad.") and norm < 1e-6 * all_grads:
            errors[k] = diff / all_grads
        else:
            errors[k] = diff / norm if norm > 0 else diff
    return errors


class _ReLU6WithShiftedMask(torch.autograd.Function):
    """ReLU6 whose backward passes the gradient where INPUT + SHIFT lies in (0, 6): the mask an
    fp32 computation whose rounding moved each input by SHIFT would use."""

    @staticmethod
    def forward(ctx, x, shift):
        moved = x + shift
        ctx.save_for_backward((moved > 0) & (moved < 6))
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return grad * passes, None


class ReLU6WithShiftedMask(nn.Module):
    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return _ReLU6WithShiftedMask.apply(x, self.shift)


def relu6_inputs(model, x):
    """Train-mode inputs of every ReLU6, by module name (taken before the in-place clamp)."""
    seen, hooks = {}, []

    def keep(name):
        return lambda module, args: seen.__setitem__(name, args[0].detach().double().clone())

    for name, m in model.named_modules():
        if isinstance(m, nn.ReLU6):
            hooks.append(m.register_forward_pre_hook(keep(name)))
    without_dropout(model).train()
    model(x)
    for h in hooks:
        h.remove()
    return seen


# Simulated fp32 roundings per reference (see fp32_chance).
ROUNDING_TRIALS = 8


def fp32_chance(model32, x, y, ref):
    """What fp32 rounding alone does to the judged quantities, as JSON objects for the reference's
    metadata (read by `osprey verify`, explained in docs/verification.md). fp32_error: PyTorch's
    own fp32 error against the float64 reference. fp32_chance: the largest of that and of
    ROUNDING_TRIALS simulated fp32 engines, for models with ReLU6: the float64 computation whose
    ReLU6 gradient masks are taken at inputs moved by PyTorch's fp32 rounding errors of that
    layer, shuffled over the layer (the same error sizes, landing on other elements, as a
    different summation order would)."""
    errors = relative_errors(judged_quantities(copy.deepcopy(model32), x.float(), y), ref)
    chance = dict(errors)
    exact = relu6_inputs(copy.deepcopy(model32).double(), x.double())
    rounded = relu6_inputs(copy.deepcopy(model32), x.float())
    shuffle = torch.Generator().manual_seed(4321)
    for _ in range(ROUNDING_TRIALS if exact else 0):
        simulated = copy.deepcopy(model32).double()
        for name, value in exact.items():
            error = (rounded[name] - value).flatten()
            shift = error[torch.randperm(error.numel(), generator=shuffle)].reshape(value.shape)
            parent, _, leaf = name.rpartition(".")
            setattr(simulated.get_submodule(parent), leaf, ReLU6WithShiftedMask(shift))
        trial = relative_errors(judged_quantities(simulated, x.double(), y), ref)
        chance = {q: max(e, trial[q]) for q, e in chance.items()}
    return {k: json.dumps({q: float(f"{e:.3g}") for q, e in v.items()}, sort_keys=True)
            for k, v in (("fp32_error", errors), ("fp32_chance", chance))}


def model_reference(out, name, model, x, y, meta):
    """NAME.params.safetensors (the float32 state_dict) and NAME.ref.safetensors (input, labels,
    eval/train logits, loss, input and parameter gradients, running statistics after one
    train-mode forward), all computed in float64 from the float32 parameters; the metadata also
    holds fp32_chance."""
    randomize_batchnorm(model)
    model = model.float()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model32 = copy.deepcopy(model)
    q = judged_quantities(model.double(), x.double(), y)
    names = {"eval_logits": "ref.eval_logits", "train_logits": "ref.train_logits",
             "loss": "ref.loss", "grad_input": "ref.grad_input"}
    ref = {"input": x.float(), "labels": y.long()}
    ref.update({names.get(k, k): v for k, v in q.items()})
    save_safetensors(as_float32(params), os.path.join(out, name + ".params.safetensors"), meta)
    save_safetensors(as_float32(ref), os.path.join(out, name + ".ref.safetensors"),
                     dict(meta, **fp32_chance(model32, x, y, q)))
    print(f"{name}: loss {float(q['loss']):.6f}")


def optimizer_reference(out, name, model, make_optimizer, batches, meta):
    """NAME.safetensors: param.* the initial parameters, input.i/labels.i for three steps,
    ref.loss.i the loss before step i, after.* the parameters after the three steps (float64)."""
    model = model.float()
    t = {"param." + k: v.detach().clone() for k, v in model.state_dict().items()}
    md = without_dropout(model.double())
    opt = make_optimizer(md.parameters())
    for i, (x, y) in enumerate(batches):
        t[f"input.{i}"], t[f"labels.{i}"] = x.float(), y.long()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(md(x.double()), y)
        loss.backward()
        opt.step()
        t[f"ref.loss.{i}"] = loss.detach().reshape(1)
    t.update({"after." + k: p.detach() for k, p in md.named_parameters()})
    save_safetensors(as_float32(t), os.path.join(out, name + ".safetensors"), meta)
    print(f"{name}: first loss {float(t['ref.loss.0']):.6f}")


def simple_cnn(out, name, seed, channels, classes, hw, labels):
    torch.manual_seed(seed)
    model = SimpleCNN(channels, classes, hw)
    x = torch.randn(len(labels), channels, hw, hw)
    model_reference(out, name, model, x, torch.tensor(labels),
                    dict(model="simple_cnn", in_channels=channels, classes=classes,
                         batch=len(labels), hw=hw))


def mnv2(out, name, seed, width, classes, hw, cifar, labels):
    torch.manual_seed(seed)
    model = mobilenet_v2(classes, width, cifar)
    x = torch.randn(len(labels), 3, hw, hw)
    model_reference(out, name, model, x, torch.tensor(labels),
                    dict(model="mobilenet_v2_cifar" if cifar else "mobilenet_v2", width=width,
                         classes=classes, batch=len(labels), hw=hw))


def optimizer(out, name, seed, make_optimizer, meta):
    torch.manual_seed(seed)
    model = SimpleCNN(2, 5, 8)
    inputs = [torch.randn(6, 2, 8, 8) for _ in range(3)]
    labels = [torch.randint(0, 5, (6,)) for _ in range(3)]
    optimizer_reference(out, name, model, make_optimizer, zip(inputs, labels),
                        dict(model="simple_cnn", **meta))


REFERENCES = {
    # The Fashion-MNIST model as trained (1x28x28, 10 classes), and other channel/class counts.
    "simple_cnn_c1_k10_b4_28": lambda o, n: simple_cnn(o, n, 2, 1, 10, 28, [0, 5, 9, 2]),
    "simple_cnn_c3_k7_b3_12": lambda o, n: simple_cnn(o, n, 10, 3, 7, 12, [6, 0, 3]),
    "simple_cnn_c1_k94_b5_16": lambda o, n: simple_cnn(o, n, 11, 1, 94, 16, [93, 0, 47, 5, 12]),
    # MobileNetV2 at the width users train on CIFAR-10, the ImageNet stem at half width, a narrow
    # CIFAR variant whose features[2] has no skip connection, and 100 classes.
    "mnv2_cifar_w1.0_c10_b4_32": lambda o, n: mnv2(o, n, 0, 1.0, 10, 32, True, [3, 1, 9, 0]),
    "mnv2_w0.5_c10_b2_64": lambda o, n: mnv2(o, n, 1, 0.5, 10, 64, False, [7, 2]),
    "mnv2_cifar_w0.35_c3_b2_40": lambda o, n: mnv2(o, n, 20, 0.35, 3, 40, True, [2, 0]),
    "mnv2_w0.25_c100_b3_48": lambda o, n: mnv2(o, n, 21, 0.25, 100, 48, False, [99, 7, 42]),
    # Three steps of each optimizer with PyTorch's update rules.
    "simple_cnn_adam3": lambda o, n: optimizer(
        o, n, 3, lambda p: torch.optim.Adam(p, lr=1e-3),
        dict(optimizer="adam", lr=1e-3, betas="0.9,0.999", eps=1e-8)),
    "simple_cnn_sgd_nesterov3": lambda o, n: optimizer(
        o, n, 12, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                            weight_decay=5e-4),
        dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    "simple_cnn_adamw3": lambda o, n: optimizer(
        o, n, 13, lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
        dict(optimizer="adamw", lr=1e-3, weight_decay=0.01)),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Write the PyTorch reference files.")
    ap.add_argument("outdir", nargs="?", default=here)
    ap.add_argument("--only", nargs="+", choices=sorted(REFERENCES), default=sorted(REFERENCES))
    args = ap.parse_args()
    # One thread: float64 sums in a fixed order, so regenerating on the same kind of CPU gives
    # the same bytes. Other thread counts or CPUs move only float64 rounding noise (the last
    # float32 bit of some tensors, and the exactly-zero gradients of README.md).
    torch.set_num_threads(1)
    os.makedirs(args.outdir, exist_ok=True)
    for name in args.only:
        REFERENCES[name](args.outdir, name)


if __name__ == "__main__":
    main()
