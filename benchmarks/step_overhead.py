"""The fixed cost of a training step, outside the arithmetic: a 2-layer LSTM's forward and backward at a tiny
shape (T, N, H) = (1, 1, 8), where nearly all of the time is Python, the dispatcher and the autograd engine,
plain, with recurrent dropout + weight drop + zoneout and with layer norm, on the compiled engine; 2 threads, 200
interleaved rounds after 2 warm-ups (``common.medians``). At (35, 20, 200) this fixed cost is part of every step, so it
counts in ``rnnkit bench --regularised``'s ratios (BENCHMARKS.md, "Where the time went"). Run it before and
after a change to the layers' Python path:

    python benchmarks/step_overhead.py
"""
import torch
from common import commit, medians

from rnnkit.layers.recurrent import LSTM

CONFIGS = {"plain": {}, "rd + wd + zoneout": dict(recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1),
           "layer norm": dict(layer_norm=True)}


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x, grad = torch.randn(1, 1, 8), torch.randn(1, 1, 8)
    layers = {name: LSTM(8, 8, 2, engine="compiled", **kw).train() for name, kw in CONFIGS.items()}
    ms = medians({name: (lambda layer=layer: layer(x)[0].backward(grad)) for name, layer in layers.items()}, 200)
    print(f"{commit()}: " + " | ".join(f"{name} {t:.3f} ms" for name, t in ms.items()))


if __name__ == "__main__":
    main()
