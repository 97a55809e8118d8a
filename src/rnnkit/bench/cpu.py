"""rnnkit's engines next to torch.nn on the CPU: training step, inference, peak memory, sgemm rate, generation.

    rnnkit bench [--quick] [--long] [--out FILE]     (or python benchmarks/engine.py, which saves its table
                                                      in benchmarks/results/engine-<date>.md)
    --quick   two shapes, fewer repeats, about a minute
    --long    adds full BPTT over T=10,000 with checkpointing (the 2 GB target), a minute or two more

For each cell type and shape (T, N, H=I), in one process with 2 threads, float32: a training step (forward +
backward of the whole sequence with a dense upstream gradient) and inference (forward under no_grad) of
rnnkit's compiled loop (the ``fused`` column), rnnkit's Python BPTT loop, the torch.nn module and an ``nn.*Cell``
loop (:mod:`.timing`). Each is warmed up, then the implementations are timed in interleaved rounds (so load from
other processes hits all alike) and the median is reported, with ratios to the torch.nn module of the same run.

GFLOP/s counts the matmuls only (6·T·N·G·H·(I+H) per training step). "sgemm" is the machine's own rate at
the same shapes: torch.mm timed alone on the step's matrix products (the input projection, T recurrent
products each way, the input and weight gradients). Peak memory: :mod:`.memory`. Generation: :mod:`.generation`.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
import sys

import torch

from ..engine import build, fused
from .generation import generation_rows
from .memory import memory_in_subprocess
from .timing import CELLS, IMPLS, QUICK_SHAPES, SHAPES, compare, implementations, ratio, timed


def step_flops(G: int, T: int, N: int, H: int, I: int) -> float:
    """The matmul flops of one training step of a cell with ``G`` gate blocks."""
    return 6.0 * T * N * G * H * (I + H)


def sgemm_seconds(G: int, T: int, N: int, H: int, I: int) -> float:
    """torch.mm alone on a training step's products: best of 5 for each shape, times its count."""
    GH, TN = G * H, T * N
    products = [((TN, I, GH), 1), ((N, H, GH), T), ((N, GH, H), T), ((TN, GH, I), 1), ((GH, TN, I), 1),
                ((GH, TN, H), 1)]
    total = 0.0
    for (m, k, n), count in products:
        a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        reps = max(1, min(count, 50))
        best = min(timed(lambda: [torch.mm(a, b, out=out) for _ in range(reps)]) for _ in range(5)) / reps
        total += best * count
    return total


def cpu_model() -> str:
    """The processor's name as ``lscpu`` gives it, else what Python knows (or the architecture)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        return re.search(r"Model name:\s*(.+)", out).group(1).strip()
    except (OSError, AttributeError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()


def machine() -> str:
    """The CPU, its load, torch's build and the compiled engine's flags, in one line."""
    model = cpu_model()
    load = "load average %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else "load unknown"
    ext = build.extension()
    if ext is None:
        products = "the compiled engine unavailable"
    elif ext._mkl_first():
        products = "every product on MKL (an Intel CPU)"
    else:
        products = "products chosen by shape (small kernel, oneDNN, MKL)"
    return (f"{model}, {os.cpu_count()} logical CPUs ({load} at the start); torch {torch.__version__} "
            f"({torch.backends.cpu.get_cpu_capability()}, MKL {torch.backends.mkl.is_available()}), "
            f"{torch.get_num_threads()} threads, float32; fused engine built with {' '.join(build._flags())}; "
            f"{products}")


def run(quick: bool, long: bool = False, command: str = "rnnkit bench") -> str:
    """The whole CPU report, as markdown."""
    torch.set_num_threads(2)
    fused.build()
    shapes = QUICK_SHAPES if quick else SHAPES
    budget = 1.0 if quick else 5.0
    date = datetime.date.today().isoformat()
    lines = [f"# rnnkit engine benchmark, {date}{' (quick)' if quick else ''}", "", f"Machine: {machine()}", "",
             f"Command: `{command}{' --quick' if quick else ''}{' --long' if long else ''}`", ""]
    train_rows, infer_rows, best_rows = [], [], []
    for label, (cell, peer) in CELLS.items():
        for T, N, H in shapes:
            runs = implementations(cell, peer, T, N, H)
            tr_all, inf_all = compare(runs, True, budget), compare(runs, False, budget / 2)
            tr = {k: statistics.median(v) for k, v in tr_all.items()}
            inf = {k: statistics.median(v) for k, v in inf_all.items()}
            flops = step_flops(cell.gates, T, N, H, H)
            sgemm = sgemm_seconds(cell.gates, T, N, H, H)
            shape = f"{label} | {T}, {N}, {H}"
            train_rows.append(f"| {shape} | {tr['torch.nn'] * 1e3:.1f} | "
                              + " | ".join(ratio(tr[k], tr["torch.nn"]) for k in IMPLS[1:])
                              + f" | {flops / tr['fused'] / 1e9:.0f} | {flops / tr['torch.nn'] / 1e9:.0f}"
                              f" | {flops / sgemm / 1e9:.0f} | {100 * sgemm / tr['fused']:.0f}% |")
            infer_rows.append(f"| {shape} | {inf['torch.nn'] * 1e3:.2f} | "
                              + " | ".join(ratio(inf[k], inf["torch.nn"]) for k in IMPLS[1:]) + " |")
            best = [min(d[k]) / min(d["torch.nn"]) for d in (tr_all, inf_all) for k in IMPLS[1:]]
            best_rows.append(f"| {shape} | " + " | ".join(f"{b:.2f}×" for b in best) + " |")
            print(train_rows[-1], file=sys.stderr, flush=True)
    lines += ["## Training step (forward + backward), median; ratio to the torch.nn module", "",
              "| cell | T, N, H | torch.nn ms | fused | python loop | nn.*Cell loop | fused GFLOP/s "
              "| torch.nn GFLOP/s | sgemm GFLOP/s, same shapes | fused % of sgemm |", "|---" * 10 + "|",
              *train_rows, "", "## Inference (forward, no_grad), median; ratio to the torch.nn module", "",
              "| cell | T, N, H | torch.nn ms | fused | python loop | nn.*Cell loop |", "|---" * 6 + "|",
              *infer_rows, "", "## Ratios of the fastest rounds (less sensitive to other processes' load)", "",
              "| cell | T, N, H | train: fused | python | cell loop | inference: fused | python | cell loop |",
              "|---" * 8 + "|", *best_rows, ""]
    mem_shapes = [(35, 20, 200), (200, 4, 128)] if quick else SHAPES + [(1000, 32, 512)]
    lines += ["## Peak memory growth of a training step (x requires grad); × what BPTT must keep", "",
              *memory_in_subprocess(mem_shapes), ""]
    if long:
        lines += [*memory_in_subprocess([], long=True), ""]
    lines += [f"## Generation: a {2}-layer LSTM, H=512, batch 1, one token at a time (no_grad), median", "",
              *generation_rows(), ""]
    if hasattr(os, "getloadavg"):
        lines += ["Load average at the end: %.1f %.1f %.1f (other processes share these CPUs when it exceeds "
                  "the thread count; the ratios come from interleaved rounds, but absolute times suffer)."
                  % os.getloadavg(), ""]
    return "\n".join(lines)
