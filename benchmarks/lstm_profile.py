"""Where the fused LSTM's training step spends its time against nn.LSTM: forward and backward timed apart.

    python benchmarks/lstm_profile.py            # T = 1 (the per-call fixed cost), 35 and 200 steps

2 threads, float32, medians of interleaved rounds after a warm-up; the shapes are two of BENCHMARKS.md's, plus
T = 1 at (N, H) = (20, 200) so that what every call pays (set-up, weight packing) shows on its own.
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from common import medians
from rnnkit.engine import run_direction

SHAPES = [(1, 20, 200), (35, 20, 200), (200, 4, 128)]


def main() -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print("| T, N, H | nn.LSTM forward ms | fused forward ms | nn.LSTM backward ms | fused backward ms |")
    print("|---|---|---|---|---|")
    for T, N, H in SHAPES:
        x, grad = torch.randn(T, N, H, requires_grad=True), torch.randn(T, N, H)
        module = nn.LSTM(H, H)
        weights = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
        h0 = torch.zeros(N, H)
        out = {}
        runs = {
            "nn fwd": lambda: out.__setitem__("nn", module(x)[0]),
            "nn bwd": lambda: out["nn"].backward(grad),
            "fused fwd": lambda: out.__setitem__("fused", run_direction("lstm", x, h0, h0, weights,
                                                                        engine="fused")[0]),
            "fused bwd": lambda: out["fused"].backward(grad),
        }
        t = medians(runs)
        print(f"| {T}, {N}, {H} | {t['nn fwd']:.3f} | {t['fused fwd']:.3f} | {t['nn bwd']:.3f} | {t['fused bwd']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
