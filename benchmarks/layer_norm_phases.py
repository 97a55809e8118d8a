"""Where layer norm's extra time goes, forward or backward: a 2-layer LSTM's compiled training step, plain and with
``layer_norm=True``, forward and backward timed apart, the two layers alternated for 60 rounds; medians, 2
threads (the backward's median is the whole step's less the forward's):

    python benchmarks/layer_norm_phases.py 200 4 128
"""
import statistics
import sys
import time

import torch

from rnnkit.layers.recurrent import LSTM


def main(T: int, N: int, H: int, rounds: int = 60) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x, grad = torch.randn(T, N, H, requires_grad=True), torch.randn(T, N, H)
    layers = {"plain": LSTM(H, H, 2, engine="compiled").train(),
              "layer norm": LSTM(H, H, 2, engine="compiled", layer_norm=True).train()}
    times = {name: ([], []) for name in layers}
    for _ in range(rounds):
        for name, layer in layers.items():
            start = time.perf_counter()
            y = layer(x)[0]
            mid = time.perf_counter()
            y.backward(grad)
            times[name][0].append(mid - start)
            times[name][1].append(time.perf_counter() - start)
    for name, (forward, step) in times.items():
        f, s = statistics.median(forward) * 1e3, statistics.median(step) * 1e3
        print(f"({T}, {N}, {H}) {name}: forward {f:.2f} ms, forward + backward {s:.2f} ms, backward {s - f:.2f} ms")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
