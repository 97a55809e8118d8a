"""A quick A/B of the regularisers' cost in the compiled loop, for one shape: a 2-layer LSTM's training step,
plain, weight drop, zoneout, recurrent dropout + weight drop + zoneout and layer norm, interleaved one step each (as
``rnnkit bench --regularised`` does), 60 rounds after 2 warm-ups (``common.medians``), medians and ratios to
plain; 2 threads. Run it before and after a change to the engine (BENCHMARKS.md, "Where the time went"):

    python benchmarks/regularised_ab.py 35 20 200
    python benchmarks/regularised_ab.py 200 4 128
"""
import sys

import torch
from common import medians

from rnnkit.layers.recurrent import LSTM

CONFIGS = {"plain": {}, "weight drop": dict(weight_drop=0.5), "zoneout": dict(zoneout=0.1),
           "rd + wd + zoneout": dict(recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1),
           "layer norm": dict(layer_norm=True)}


def main() -> None:
    torch.set_num_threads(2)
    T, N, H = (int(a) for a in sys.argv[1:4])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    torch.manual_seed(0)
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    layers = {name: LSTM(H, H, 2, engine="compiled", **kw).train() for name, kw in CONFIGS.items()}
    ms = medians({name: (lambda layer=layer: layer(x)[0].backward(grad)) for name, layer in layers.items()}, rounds)
    print((T, N, H), " | ".join(f"{name} {t:.2f} ms ({t / ms['plain']:.3f}×)" for name, t in ms.items()))


if __name__ == "__main__":
    main()
