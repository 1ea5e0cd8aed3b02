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
