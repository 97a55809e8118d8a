"""Layer norm's cost on every cell kind, not only the LSTM that ``rnnkit bench --regularised`` times: a 2-layer
stack's training step (forward + backward, dense upstream gradient) on the compiled loop with ``layer_norm=True``
against the same stack without it, in time (medians of interleaved rounds after two warm-ups,
``common.medians``) and in the bytes the step saves for its backward (``rnnkit.bench.regularised.saved_bytes``,
each storage once, the input included); 2 threads, float32.

    python benchmarks/layer_norm_cells.py                       # (35, 20, 200) and (200, 4, 128)
    python benchmarks/layer_norm_cells.py --shapes "[(100, 32, 256)]" --rounds 20

BENCHMARKS.md ("Layer norm on every cell kind") has a run and what it says about the targets.
"""
from __future__ import annotations

import argparse
import ast

import torch
from common import cpu_name, medians

import rnnkit
from rnnkit.bench.regularised import saved_bytes, training_step

SHAPES = [(35, 20, 200), (200, 4, 128)]
CELLS = {"LSTM": (rnnkit.LSTM, {}), "GRU (Cho)": (rnnkit.GRU, {}),
         "GRU (PyTorch's)": (rnnkit.GRU, {"reset_after": True}), "Elman RNN": (rnnkit.RNN, {})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=repr(SHAPES), help="a Python list of (T, N, H)")
    p.add_argument("--rounds", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(2)
    print(f"{cpu_name(processor=True)}, 2 threads, {args.rounds} rounds")
    print("| (T, N, H) | cell | plain step ms | layer norm × plain (time) | × plain (saved bytes) |")
    print("|---|---|---|---|---|")
    for T, N, H in ast.literal_eval(args.shapes):
        torch.manual_seed(0)
        x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
        for name, (cls, kw) in CELLS.items():
            layers = {ln: cls(H, H, 2, engine="compiled", layer_norm=ln, **kw).train() for ln in (False, True)}
            steps = {ln: training_step(layer, x, grad) for ln, layer in layers.items()}
            saved = {ln: saved_bytes(step) for ln, step in steps.items()}
            ms = medians(steps, args.rounds)
            print(f"| ({T}, {N}, {H}) | {name} | {ms[False]:.2f} | {ms[True] / ms[False]:.3f}× | "
                  f"{saved[True] / saved[False]:.3f}× |", flush=True)


if __name__ == "__main__":
    main()
