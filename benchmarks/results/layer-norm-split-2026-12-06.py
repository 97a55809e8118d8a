"""The forward's and the backward's time of one training step, plain and layer-normalised 2-layer LSTM (compiled
loop), interleaved one step each, medians after 3 warm-up rounds. Threads from NT (default 2). Run from the
repository root: NT=1 python benchmarks/results/layer-norm-split-2026-12-06.py 200 4 128 40"""
import os
import statistics
import sys
import time

import torch

from rnnkit.layers.recurrent import LSTM

torch.set_num_threads(int(os.environ.get("NT", "2")))
T, N, H, rounds = map(int, sys.argv[1:5])
torch.manual_seed(0)
x, g = torch.randn(T, N, H), torch.randn(T, N, H)
layers = {"plain": LSTM(H, H, 2, engine="compiled").train(),
          "layer norm": LSTM(H, H, 2, engine="compiled", layer_norm=True).train()}
times = {name: ([], []) for name in layers}
for r in range(rounds):
    for name, layer in layers.items():
        t0 = time.perf_counter()
        y = layer(x)[0]
        t1 = time.perf_counter()
        y.backward(g)
        t2 = time.perf_counter()
        if r >= 3:
            times[name][0].append(t1 - t0), times[name][1].append(t2 - t1)
for name, (fwd, bwd) in times.items():
    print(f"{name}: forward {1e3 * statistics.median(fwd):.2f} ms, backward {1e3 * statistics.median(bwd):.2f} ms")
