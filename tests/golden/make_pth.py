"""Makes the .pth fixtures of tests/test_engine_pth.cpp in tests/golden/pth/, with Debian's
python3-torch 1.13 (CI has no torch: the files are committed). Each readable NAME.pth comes
with NAME.expected.safetensors, the tensors Osprey must read from it (names unwrapped, views
contiguous, dtypes kept); the hostile ones come alone.
usage: /usr/bin/python3 tests/golden/make_pth.py"""
import collections
import datetime
import io
import json
import os
import struct
import sys
import zipfile

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from torch_models import SimpleCNN, load_safetensors, mobilenet_v2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pth")
# The file the hostile pickle would create; the test checks it never appears.
MARKER = "/tmp/osprey_pth_reduce_ran"
_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}


def save_expected(tensors, name):
    """safetensors written here: torch_models.save_safetensors knows no BF16, I32 or U8."""
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous()
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        data = raw.numpy().tobytes()
        header[key] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(os.path.join(OUT, name + ".expected.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def save(obj, name):
    torch.save(obj, os.path.join(OUT, name + ".pth"))


def rewrite(src, name, edit):
    """NAME.pth: the zip of SRC.pth with each entry's bytes passed through edit(entry, bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(os.path.join(OUT, src + ".pth")) as zin, \
            zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
            zout.writestr(fixed, edit(info.filename, zin.read(info.filename)))
    with open(os.path.join(OUT, name + ".pth"), "wb") as f:
        f.write(buf.getvalue())


class RunsCommand:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


def tiny_model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    m(torch.randn(4, 1, 4, 4))  # running statistics and num_batches_tracked move
    return m


def readable():
    model = tiny_model()
    sd = model.state_dict()
    save(sd, "plain")
    save_expected(sd, "plain")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    sd = model.state_dict()
    save({"epoch": 3, "state_dict": sd, "optimizer": opt.state_dict(), "best_acc": 0.5,
          "args": [1, "x", None, True, -70000, 2 ** 40]}, "checkpoint")
    save_expected(sd, "checkpoint")
    wrapped = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    wrapped["_orig_mod.module.extra"] = torch.ones(2)
    save(wrapped, "ddp")
    save_expected(dict(sd, extra=torch.ones(2)), "ddp")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {"transposed": base.t(), "offset": base.flatten()[5:11], "column": base[:, 2],
             "block": base[1:3, 2:5], "whole": base}
    save(views, "views")
    save_expected({k: v.clone() for k, v in views.items()}, "views")
    dtypes = {"f16": torch.tensor([1.5, -2.0, 65504.0], dtype=torch.float16),
              "bf16": torch.tensor([1.5, -3.25, 1e30], dtype=torch.bfloat16),
              "f64": torch.tensor([[1e-300, 2.5], [-7.0, 3.0]], dtype=torch.float64),
              "i64": torch.tensor([-(2 ** 40), 7], dtype=torch.int64),
              "i32": torch.tensor([-5, 6, 7], dtype=torch.int32),
              "u8": torch.tensor([0, 255], dtype=torch.uint8),
              "scalar": torch.tensor(42, dtype=torch.int64)}
    save(dtypes, "dtypes")
    save_expected(dtypes, "dtypes")
    torch.manual_seed(1)
    cnn = SimpleCNN(1, 10, 28).state_dict()
    save({"epoch": 1, "model": cnn}, "simple_cnn")
    models()


def models():
    """MobileNetV2s for tests/test_app_pth.cpp: one as DDP saves it, with BatchNorm statistics
    moved off their defaults, and the reference weights of a golden file as torch.compile's
    wrapper names them inside a training checkpoint (osprey verify must match PyTorch on it)."""
    torch.manual_seed(2)
    mnv2 = mobilenet_v2(10, 0.25, cifar=True)
    with torch.no_grad():
        for _ in range(3):
            mnv2(torch.randn(8, 3, 28, 28) * 2 + 0.5)
    save(collections.OrderedDict(("module." + k, v) for k, v in mnv2.state_dict().items()),
         "mnv2_cifar_ddp")
    golden = os.path.join(os.path.dirname(OUT), "mnv2_cifar_w0.35_c3_b2_40.params.safetensors")
    compiled = collections.OrderedDict(
        ("_orig_mod." + k, v) for k, v in load_safetensors(golden)[0].items())
    save({"epoch": 7, "model": compiled, "optimizer": {}}, "mnv2_cifar_w0.35_c3_b2_40.params")


def hostile():
    t = torch.arange(4, dtype=torch.float32)
    save({"w": t, "x": RunsCommand()}, "reduce_system")
    save({"w": t, "when": datetime.date(2020, 1, 1)}, "unknown_global")
    save({"w": t}, "one_tensor")
    rewrite("one_tensor", "truncated_pickle",
            lambda n, b: b[: len(b) // 2] if n.endswith("data.pkl") else b)
    # The tensor's storage_offset (BININT1 0 right after BINPERSID) becomes 99 of 4 elements.
    rewrite("one_tensor", "offset_beyond",
            lambda n, b: b.replace(b"QK\x00", b"QKc", 1) if n.endswith("data.pkl") else b)
    rewrite("one_tensor", "short_storage",
            lambda n, b: b[:8] if n.endswith("data/0") else b)
    os.remove(os.path.join(OUT, "one_tensor.pth"))


def main():
    os.makedirs(OUT, exist_ok=True)
    readable()
    hostile()


if __name__ == "__main__":
    main()
