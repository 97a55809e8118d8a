"""Item 15 of layer-norm-tried-2026-12-06.log: layer norm with the side work split k = 0 or 1 (the KSPLIT variable of
layer-norm-side-split-2026-12-06.patch, applied to 8915fd8) in the same rounds. From the repository root:
python benchmarks/results/layer-norm-side-split-2026-12-06.py 200 4 128 300"""
import os
import sys

import torch

sys.path.insert(0, "benchmarks")
from common import medians  # noqa: E402

from rnnkit.layers.recurrent import LSTM  # noqa: E402

torch.set_num_threads(2)
T, N, H = map(int, sys.argv[1:4])
x, g = torch.randn(T, N, H), torch.randn(T, N, H)
plain = LSTM(H, H, 2, engine="compiled").train()
ln = LSTM(H, H, 2, engine="compiled", layer_norm=True).train()


def run(layer, k):
    def f():
        if k is not None:
            os.environ["KSPLIT"] = str(k)
        layer(x)[0].backward(g)
    return f


m = medians({"plain": run(plain, None), "ln k=0": run(ln, 0), "ln k=1": run(ln, 1)}, int(sys.argv[4]))
print(" | ".join(f"{k} {v:.2f} ms ({v / m['plain']:.3f}x)" for k, v in m.items()), f"k1/k0 {m['ln k=1'] / m['ln k=0']:.3f}")
