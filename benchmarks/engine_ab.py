"""A/B of the fused engine's product choices against torch.nn, interleaved in one process (tuning tool).

    python benchmarks/engine_ab.py lstm                       # the current defaults at the five shapes
    python benchmarks/engine_ab.py lstm --shapes "[(200, 4, 128)]" \\
        --config "old=(-1, 16777216, 4194304, 2097152, 2097152)" --config "new=(-1, 16777216, 4194304, 2097152, 262144)"
    python benchmarks/engine_ab.py gru --forward-only
    python benchmarks/engine_ab.py lstm --config "mkl=(-1, 16777216, 4194304, 2097152, 262144, 1)" \\
        --config "by-shape=(-1, 16777216, 4194304, 2097152, 262144, 0)"
    python benchmarks/engine_ab.py lstm --variant-flags "-O3 -fopenmp -fno-trapping-math -fno-math-errno -mavx2 -mfma"
    python benchmarks/engine_ab.py gru --shapes "[(50, 128, 1024)]" --rounds 8 --floor

A config is (backend, onednn_step, onednn_once, serial, small_task[, mkl_first]): backend -1 chooses per product
(0 ATen, 1 MKL packed, 2 oneDNN, 3 the small-batch kernel), the next four are the flop thresholds of
``csrc/gemm.h``, and mkl_first (1 or 0; default: this CPU's) picks the automatic choice's profile: every product
to MKL (Intel CPUs) or by shape. Each
round runs torch.nn's module, then every config (set just before its run), so load from other processes hits
all alike; the medians' ratios to torch.nn are printed. Separate processes on this shared 2-vCPU machine
differ by up to ±0.1 in a ratio; interleaving in one process is what separates a few percent.
``--variant-flags`` builds the extension again with other compiler flags and times that build in the same
rounds ("variant", with this build's default thresholds), against the default build ("defaults").
``--floor`` adds what the step's matrix products alone take (:func:`products`), each timed on its own through
the engine's oneDNN path with contiguous operands, over torch.nn's step: no implementation that does these
products at that rate and anything else at all can reach a ratio below it.
"""
from __future__ import annotations

import argparse
import sys

import torch

from common import engine_build, medians
from rnnkit.bench.timing import SHAPES, torch_module
from rnnkit.cells.spec import GRU, GRU_TORCH, LSTM, RNN_TANH, Recurrence
from rnnkit.engine import build, run_direction

CELLS = {"lstm": (LSTM, LSTM), "gru": (GRU, GRU_TORCH), "gru_reset_after": (GRU_TORCH, GRU_TORCH),
         "rnn_tanh": (RNN_TANH, RNN_TANH)}   # the argument: (rnnkit's cell, the cell whose torch.nn layer races it)


def parse_config(text: str) -> tuple[str, tuple]:
    name, _, value = text.partition("=")
    numbers = tuple(float(v) for v in value.strip(" ()").split(","))
    if not name or len(numbers) not in (5, 6):
        raise argparse.ArgumentTypeError(f"expected NAME=(backend, onednn_step, onednn_once, serial, small_task"
                                         f"[, mkl_first]), got {text!r}")
    return name, (int(numbers[0]), *numbers[1:5], bool(numbers[5]) if len(numbers) == 6 else None)


def products(cell: Recurrence, T: int, N: int, H: int) -> list[tuple[int, int, int, int]]:
    """The matrix products of one training step with I = H, as (count, m, k, n): (m, k) @ (k, n), `count` times.

    The input projection and, in the backward, dX, dU and dW once over all T*N rows; the recurrent product
    h_{t-1} W and dG W^T at every step (Cho's GRU: its r, z block and its n block apart, as it must)."""
    GH = H * cell.gates
    rows = T * N
    once = [(1, rows, H, GH), (1, rows, GH, H), (1, GH, rows, H), (1, GH, rows, H)]   # X U; dG U^T; dU; dW
    if cell is GRU:
        return once + [(T, N, H, 2 * H), (T, N, H, H), (T, N, H, H), (T, N, 2 * H, H)]
    return once + [(T, N, H, GH), (T, N, GH, H)]


def products_ms(cell: Recurrence, T: int, N: int, H: int, rounds: int) -> float:
    """The time of :func:`products`, each product's median over ``rounds`` runs on its own, summed."""
    gemm = build.extension()._gemm
    total = 0.0
    for count, m, k, n in products(cell, T, N, H):
        a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        total += count * medians({"p": lambda: gemm(out, a, b, False)}, max(rounds, 20))["p"]
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=sorted(CELLS))
    p.add_argument("--shapes", default=repr(SHAPES), help="a Python list of (T, N, H)")
    p.add_argument("--config", type=parse_config, action="append", help="NAME=(backend, thresholds...)")
    p.add_argument("--forward-only", action="store_true", help="time the forward alone (grad enabled)")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--variant-flags", help="also time a build with these compiler flags")
    p.add_argument("--floor", action="store_true", help="also the step's matrix products alone (not --forward-only)")
    args = p.parse_args()
    configs = dict(args.config or [("defaults", None)])      # None: the build's own thresholds, left unset
    module = build.extension()
    default_profile = module._mkl_first()
    builds = {name: module for name in configs}
    if args.variant_flags:
        configs["variant"] = None
        builds["variant"] = engine_build(build._CSRC, args.variant_flags.split())   # the same sources, other flags
    torch.set_num_threads(2)
    cell, racer = CELLS[args.mode]
    for T, N, H in eval(args.shapes):                        # a tuning tool: the shapes come from its user
        torch.manual_seed(0)
        x, grad = torch.randn(T, N, H, requires_grad=True), torch.randn(T, N, H)
        peer = torch_module(racer, H)
        w = (peer.weight_ih_l0, peer.weight_hh_l0, peer.bias_ih_l0, peer.bias_hh_l0)
        h0 = torch.zeros(N, H)

        def timed(forward, config=None, ext=None):
            def run():
                if ext is not None:
                    build.state["module"] = ext
                if config is not None:
                    module._set_backend(config[0])
                    module._set_thresholds(*config[1:5])
                    module._mkl_first(default_profile if config[5] is None else config[5])
                y = forward()
                if not args.forward_only:
                    y.backward(grad)
            return run

        runs = {"torch.nn": timed(lambda: peer(x)[0])}
        for name, config in configs.items():
            runs[name] = timed(lambda: run_direction(cell, x, h0, h0, w, engine="compiled")[0], config,
                               builds[name])
        med = medians(runs, args.rounds)
        what = "forward" if args.forward_only else "training step"
        floor = ""
        if args.floor and not args.forward_only:
            floor = f" | products alone {products_ms(cell, T, N, H, args.rounds) / med['torch.nn']:.3f}x"
        print(f"{args.mode} {what} ({T}, {N}, {H}): torch.nn {med['torch.nn']:.2f} ms | "
              + " | ".join(f"{k} {med[k] / med['torch.nn']:.3f}x" for k in configs) + floor, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
