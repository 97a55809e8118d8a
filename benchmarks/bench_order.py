"""Does the order of ``rnnkit bench --regularised``'s interleaved rounds move its ratios? The bench times its
configurations one step each, always in the same order, so each step follows the same other configuration (layer
norm's follows the autograd loop's, which leaves the caches cold). This times the same layers at one shape in
three ways in the same rounds: the bench's fixed order, a shuffled order each round, and each configuration's
step after one untimed step of its own (warm, as in training: the faster of two timed steps). Medians; ratios to
the plain compiled cell of the same way; 2 threads.

    python benchmarks/bench_order.py 35 20 200 25
    python benchmarks/bench_order.py 200 4 128 25
"""
from __future__ import annotations

import argparse
import random
import statistics

import torch
from common import cpu_name

from rnnkit.bench.regularised import BASE, configured_layers, training_step
from rnnkit.bench.timing import timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("shape", type=int, nargs=3, help="T N H: steps, sequences, hidden units")
    p.add_argument("rounds", type=int, nargs="?", default=25)
    args = p.parse_args()
    torch.set_num_threads(2)
    T, N, H = args.shape
    torch.manual_seed(0)
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    layers = configured_layers(H)
    steps = {name: training_step(layer, x, grad) for name, layer in layers.items()}
    for step in steps.values():                                  # warm-up
        step()
    names, rng = list(steps), random.Random(0)
    ways = {"fixed order (the bench's)": {n: [] for n in names}, "shuffled each round": {n: [] for n in names},
            "warm (after a step of its own)": {n: [] for n in names}}
    fixed, shuffled, warm = ways.values()
    for _ in range(args.rounds):
        for n in names:
            fixed[n].append(timed(steps[n]))
        for n in rng.sample(names, len(names)):
            shuffled[n].append(timed(steps[n]))
        for n in rng.sample(names, len(names)):
            steps[n]()
            warm[n].append(min(timed(steps[n]), timed(steps[n])))
    compiled = [n for n in names if "compiled" in n and n != BASE]
    print(f"{cpu_name(processor=True)}, 2 threads, ({T}, {N}, {H}), {args.rounds} rounds")
    print("| way | plain ms | " + " | ".join(n.replace(" (compiled)", "") for n in compiled) + " |")
    print("|---|---|" + "---|" * len(compiled))
    for way, times in ways.items():
        base = statistics.median(times[BASE])
        print(f"| {way} | {base * 1e3:.2f} | " +
              " | ".join(f"{statistics.median(times[n]) / base:.3f}×" for n in compiled) + " |")


if __name__ == "__main__":
    main()
