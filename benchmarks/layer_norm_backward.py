"""Forward and backward time of one compiled LSTM layer with and without layer norm (BENCHMARKS.md, "Regularised
cells"): (T, N, H) = (35, 20, 200), one thread, medians of 40 steps after 3 warm-ups. Run it twice, the second time
with glibc keeping freed memory, to see what the allocator costs:

    python benchmarks/layer_norm_backward.py
    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 python benchmarks/layer_norm_backward.py
"""
from __future__ import annotations

import os
import statistics
import time

import torch

import rnnkit


def main() -> None:
    torch.set_num_threads(1)
    T, N, H = 35, 20, 200
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    print(f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', '(unset)')}; "
          f"(T, N, H) = {(T, N, H)}, one thread")
    for layer_norm in (False, True):
        layer = rnnkit.LSTM(H, H, 1, engine="compiled", layer_norm=layer_norm).train()
        for _ in range(3):
            layer(x)[0].backward(grad)
        forward, backward = [], []
        for _ in range(40):
            t0 = time.perf_counter()
            y = layer(x)[0]
            t1 = time.perf_counter()
            y.backward(grad)
            forward.append(t1 - t0)
            backward.append(time.perf_counter() - t1)
        print(f"layer_norm={layer_norm}: forward {statistics.median(forward) * 1e3:.2f} ms, "
              f"backward {statistics.median(backward) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
