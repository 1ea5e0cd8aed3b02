"""PyTorch twins of Osprey's models and a safetensors reader/writer, for the scripts that
compare against PyTorch (tests/golden/make_golden.py, bench/torch_*.py) and convert weights.
Debian's python3-torch has no safetensors package, so the format is written here directly.
Scripts elsewhere import it with `sys.path.insert(0, <repo>/tools)`."""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64"}
_NUMPY = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}


class SimpleCNN(nn.Module):
    """The Fashion-MNIST model: two conv3x3+ReLU+maxpool2 stages, fc1 128, fc2."""

    def __init__(self, channels, classes, hw):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * (hw // 4) * (hw // 4), 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))  # flatten in C,H,W order


def mobilenet_v2(classes, width=1.0, cifar=False):
    """torchvision's MobileNetV2; the CIFAR variant keeps 32x32 inputs at 4x4 by giving the stem
    and the first 24-channel depthwise convolution stride 1 (after construction, as users do)."""
    import torchvision
    m = torchvision.models.mobilenet_v2(num_classes=classes, width_mult=width)
    if cifar:
        m.features[0][0].stride = (1, 1)
        m.features[2].conv[1][0].stride = (1, 1)
    return m


def save_safetensors(tensors, path, metadata=None):
    """Sorted names, 8-byte aligned header, little-endian data; written to PATH.tmp and renamed,
    so a reader never sees half a file."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def load_safetensors(path):
    """(tensors, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=_NUMPY[v["dtype"]]).copy()
                                  .reshape(v["shape"]))
    return out, meta
