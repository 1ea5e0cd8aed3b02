#!/usr/bin/env python3
"""Converts a PyTorch state_dict (.pth, e.g. torchvision's ImageNet MobileNetV2 weights
mobilenet_v2-b0353104.pth) to safetensors for `osprey train --set init_from=OUT`. The
classifier is replaced when the class count differs. Needs only torch (no safetensors package).
usage: tools/torch_to_safetensors.py IN.pth OUT.safetensors"""
import sys

import torch

from torch_models import save_safetensors

sd = torch.load(sys.argv[1], map_location="cpu")
sd = sd.get("state_dict", sd)  # plain state_dict or a training checkpoint holding one
save_safetensors(sd, sys.argv[2])
print(f"{sys.argv[2]}: {len(sd)} tensors")
