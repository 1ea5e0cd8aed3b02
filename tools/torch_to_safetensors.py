#!/usr/bin/env python3
"""Converts a PyTorch state_dict (.pth, e.g. torchvision's ImageNet MobileNetV2 weights
mobilenet_v2-b0353104.pth) to safetensors for `osprey train --set init_from=OUT`. The
classifier is replaced when the class count differs. Needs only torch (no safetensors package).
usage: tools/torch_to_safetensors.py IN.pth OUT.safetensors"""
import json, struct, sys
import torch

sd = torch.load(sys.argv[1], map_location="cpu")
sd = sd.get("state_dict", sd)  # plain state_dict or a training checkpoint holding one
names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64"}
header, blobs, offset = {}, [], 0
for key in sorted(sd):
    t = sd[key].detach().contiguous().cpu()
    data = t.numpy().tobytes()
    header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(f"{sys.argv[2]}: {len(header)} tensors")
