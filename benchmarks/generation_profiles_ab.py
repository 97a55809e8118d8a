"""The generation step (a 2-layer LSTM, H = 512, batch 1 or more, no_grad) under the compiled engine's two product
profiles, alternated in one process: every product on MKL (Intel CPUs' default) against the choice by shape.

    python benchmarks/generation_profiles_ab.py            # 30 rounds of 100 tokens each, batch 1, medians
    python benchmarks/generation_profiles_ab.py 40 200 4   # 40 rounds of 200 tokens, batch 4

Each profile gets its own layer, whose compiled stepper is built (its weights packed) under that profile.
"""
import statistics
import sys
import time

import torch

from rnnkit.engine import build
from rnnkit.layers.recurrent import LSTM


def main(rounds: int = 30, tokens: int = 100, batch: int = 1) -> None:
    torch.set_num_threads(2)
    ext = build.extension()
    default = ext._mkl_first()
    layers = {}
    for mkl_first in (True, False):
        ext._mkl_first(mkl_first)
        torch.manual_seed(0)
        layer = LSTM(512, 512, 2, engine="compiled").eval()
        with torch.no_grad():
            layer.step(torch.randn(batch, 512), None)         # builds the stepper under this profile
        layers[mkl_first] = layer
    ext._mkl_first(default)
    x = torch.randn(batch, 512)
    times = {flag: [] for flag in layers}
    with torch.no_grad():
        for _ in range(rounds):
            for flag, layer in layers.items():
                _, state = layer.step(x, None)
                start = time.perf_counter()
                for _ in range(tokens):
                    _, state = layer.step(x, state)
                times[flag].append((time.perf_counter() - start) / tokens * 1e6)
    for flag, name in ((True, "every product on MKL"), (False, "by shape")):
        print(f"{name}: {statistics.median(times[flag]):.0f} µs a token")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
