"""Forward and backward time of a compiled LSTM stack with and without layer norm (BENCHMARKS.md, "Regularised
cells"): by default one layer at (T, N, H) = (35, 20, 200) on one thread; the two configurations interleaved one
training step each, 3 warm-up rounds, then medians of 40 rounds. Run it twice, the second time with glibc keeping
freed memory, to see what the allocator costs; or at another shape, depth and thread count to see where layer
norm's extra goes:

    python benchmarks/layer_norm_backward.py
    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 python benchmarks/layer_norm_backward.py
    python benchmarks/layer_norm_backward.py 200 4 128 --layers 2 --threads 2 --rounds 37
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import rnnkit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("shape", type=int, nargs="*", default=[35, 20, 200], help="T N H (default 35 20 200)")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=40)
    args = p.parse_args()
    if len(args.shape) != 3:
        p.error("the shape is three numbers: T N H")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, N, H = args.shape
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    print(f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', '(unset)')}; "
          f"(T, N, H) = {(T, N, H)}, {args.layers} layer(s), {args.threads} thread(s)")
    layers = {normed: rnnkit.LSTM(H, H, args.layers, engine="compiled", layer_norm=normed).train()
              for normed in (False, True)}
    times = {normed: ([], []) for normed in layers}
    for r in range(3 + args.rounds):
        for normed, layer in layers.items():
            t0 = time.perf_counter()
            y = layer(x)[0]
            t1 = time.perf_counter()
            y.backward(grad)
            if r >= 3:
                times[normed][0].append(t1 - t0)
                times[normed][1].append(time.perf_counter() - t1)
    for normed, (forward, backward) in times.items():
        print(f"layer_norm={normed}: forward {statistics.median(forward) * 1e3:.2f} ms, "
              f"backward {statistics.median(backward) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
