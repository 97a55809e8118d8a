"""What the layers' regularisers cost: one LSTM training step (forward + backward) per configuration, in one
process, interleaved rounds, medians, each as a ratio to the plain compiled cell measured in the same run.

    python benchmarks/regularised.py [--shapes 35,20,200 200,4,128] [--rounds 7] [--threads 2]

Configurations: plain (compiled); weight_drop + variational_dropout (still the compiled loop: the engines take
the dropped weight and input as tensors); recurrent_dropout + weight_drop + zoneout on the Python BPTT loop
(engine="auto" picks it) and the same options on the autograd loop (the way users write them today); layer_norm
(the autograd loop). Two layers, so that variational dropout has a layer to act on.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnkit

CONFIGS = {
    "plain (compiled)": dict(engine="auto"),
    "weight_drop+variational (compiled)": dict(engine="auto", weight_drop=0.5, variational_dropout=0.3),
    "rd+wd+zoneout (python BPTT)": dict(engine="auto", recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1),
    "rd+wd+zoneout (autograd loop)": dict(engine="autograd", recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1),
    "layer_norm (autograd loop)": dict(engine="auto", layer_norm=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=["35,20,200", "200,4,128"], help="T,N,H")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, 2-layer LSTM training step (forward + backward), "
          f"median of {a.rounds} interleaved rounds; ratio to the plain compiled cell")
    for shape in a.shapes:
        T, N, H = map(int, shape.split(","))
        x = torch.randn(T, N, H)
        layers = {name: rnnkit.LSTM(H, H, num_layers=2, **kw) for name, kw in CONFIGS.items()}

        def step(layer):
            out, _ = layer(x)
            out.sum().backward()

        for layer in layers.values():
            step(layer)                                   # warm-up (and the compiled engine's build)
        times = {name: [] for name in layers}
        for _ in range(a.rounds):
            for name, layer in layers.items():
                t0 = time.perf_counter()
                step(layer)
                times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["plain (compiled)"])
        print(f"\n(T, N, H) = ({T}, {N}, {H})")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:38s} {med * 1e3:9.1f} ms   {med / base:5.2f}x")


if __name__ == "__main__":
    main()
