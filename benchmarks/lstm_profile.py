"""Where the fused LSTM's training step spends its time against nn.LSTM: forward and backward timed apart.

    python benchmarks/lstm_profile.py            # T = 1 (the per-call fixed cost), 35 and 200 steps
    python benchmarks/lstm_profile.py --shapes "[(50, 128, 1024)]" --rounds 5
    perf record -F 500 python benchmarks/lstm_profile.py --shapes "[(35, 20, 200)]" --only fused --rounds 1500
    perf report --sort dso                       # where one implementation's time goes (oneDNN shows as [JIT])

2 threads, float32, medians of interleaved rounds after a warm-up; the shapes are two of BENCHMARKS.md's, plus
T = 1 at (N, H) = (20, 200) so that what every call pays (set-up, weight packing) shows on its own. ``--only``
runs one implementation's training steps alone, for a profiler.
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from common import medians
from rnnkit.cells.spec import LSTM
from rnnkit.engine import run_direction

SHAPES = [(1, 20, 200), (35, 20, 200), (200, 4, 128)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=repr(SHAPES), help="a Python list of (T, N, H)")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--only", choices=("fused", "nn"), help="run this implementation's training steps alone")
    args = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if args.only is None:
        print("| T, N, H | nn.LSTM forward ms | fused forward ms | nn.LSTM backward ms | fused backward ms |")
        print("|---|---|---|---|---|")
    for T, N, H in eval(args.shapes):                        # a profiling tool: the shapes come from its user
        x, grad = torch.randn(T, N, H, requires_grad=True), torch.randn(T, N, H)
        module = nn.LSTM(H, H)
        weights = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
        h0 = torch.zeros(N, H)
        forward = {"nn": lambda: module(x)[0],
                   "fused": lambda: run_direction(LSTM, x, h0, h0, weights, engine="compiled")[0]}
        if args.only is not None:
            for _ in range(args.rounds):
                forward[args.only]().backward(grad)
            continue
        out = {}
        runs = {f"{k} {part}": (lambda k=k: out.__setitem__(k, forward[k]())) if part == "fwd" else
                (lambda k=k: out[k].backward(grad)) for k in ("nn", "fused") for part in ("fwd", "bwd")}
        t = medians(runs, args.rounds)
        print(f"| {T}, {N}, {H} | {t['nn fwd']:.3f} | {t['fused fwd']:.3f} | {t['nn bwd']:.3f} "
              f"| {t['fused bwd']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
