"""rnnkit's engines next to torch.nn on a CUDA GPU: ``rnnkit bench --device cuda``.

The CPU benchmark's implementations and interleaved rounds (:mod:`.timing`), each run ended by a synchronize:
torch.nn's module (cuDNN), rnnkit's ``engine="cuda-graph"`` (the hand-written BPTT loop replayed from captured
CUDA graphs, :mod:`rnnkit.engine.graphed`; the ``fused`` column), the same loop launched from Python, and an
``nn.*Cell`` loop. ``engine="auto"`` runs torch.nn's cuDNN kernels for the three cells cuDNN has, so its row is
the torch.nn column; for the lecture's GRU it is the fused column. Peak memory is the growth of
``torch.cuda.max_memory_allocated`` during one training step; the graphed engine's per-shape buffers (static
inputs, outputs and the graphs' pool) stay after its first call: the last two columns give what the GPU
holds after a first training call from an empty cache (the step's gradients included) for cuDNN and for it,
and the next two how long that first call took. Generation times ``layer.step`` (replayed from a captured
CUDA graph, :class:`rnnkit.layers.stepping.GraphedStep`) against torch.nn's LSTM called per step.
"""
from __future__ import annotations

import datetime
import statistics
import sys

import torch

from ..engine import graphed
from .generation import generation_rows
from .timing import CELLS, IMPLS, QUICK_SHAPES, SHAPES, Run, compare, implementations, ratio, timed


def gpu_description() -> str:
    """The GPU, torch, CUDA and cuDNN, and whether TF32 is on: the line every CUDA report names."""
    p = torch.cuda.get_device_properties(0)
    return (f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs; torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, float32 "
            f"(cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}, "
            f"matmul TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}: torch's defaults)")


def _peak_growth(run: Run) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run(True)
    return torch.cuda.max_memory_allocated() - base


def _kept_by_first_call(run: Run) -> tuple[int, float]:
    """Bytes the GPU holds after an implementation's first training call with nothing cached: for the graphed
    engine its entry (static buffers and the graphs' private pool), plus the step's gradients for all; and the
    call's seconds (for the graphed engine: warm-up, capture and first replay of both graphs)."""
    graphed._entries.clear()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_reserved()
    seconds = timed(lambda: run(True))
    torch.cuda.empty_cache()                                # frees the step's temporaries; graph pools stay
    return torch.cuda.memory_reserved() - base, seconds


def run(quick: bool, command: str) -> str:
    """The whole CUDA report, as markdown."""
    shapes = QUICK_SHAPES if quick else SHAPES
    budget = 0.5 if quick else 2.0
    lines = [f"# rnnkit engine benchmark on CUDA, {datetime.date.today().isoformat()}{' (quick)' if quick else ''}",
             "", f"GPU: {gpu_description()}", "", f"Command: `{command}`", ""]
    train_rows, infer_rows, memory_rows = [], [], []
    for label, (cell, peer) in CELLS.items():
        for T, N, H in shapes:
            runs = implementations(cell, peer, T, N, H, device="cuda")
            kept = {k: _kept_by_first_call(runs[k]) for k in ("torch.nn", "fused")}
            for r in runs.values():                       # first calls: cuDNN plans, graph capture
                r(True)
                r(False)
            tr = {k: statistics.median(v) for k, v in compare(runs, True, budget).items()}
            inf = {k: statistics.median(v) for k, v in compare(runs, False, budget / 2).items()}
            shape = f"{label} | {T}, {N}, {H}"
            train_rows.append(f"| {shape} | {tr['torch.nn'] * 1e3:.2f} | "
                              + " | ".join(ratio(tr[k], tr["torch.nn"]) for k in IMPLS[1:]) + " |")
            infer_rows.append(f"| {shape} | {inf['torch.nn'] * 1e3:.2f} | "
                              + " | ".join(ratio(inf[k], inf["torch.nn"]) for k in IMPLS[1:]) + " |")
            peaks = {k: _peak_growth(runs[k]) for k in IMPLS}
            memory_rows.append(f"| {shape} | " + " | ".join(f"{peaks[k] / 2**20:.1f}" for k in IMPLS)
                               + f" | {kept['torch.nn'][0] / 2**20:.1f} | {kept['fused'][0] / 2**20:.1f}"
                               f" | {kept['torch.nn'][1] * 1e3:.0f} | {kept['fused'][1] * 1e3:.0f} |")
            print(train_rows[-1], file=sys.stderr, flush=True)
    names = " | ".join(IMPLS[1:])
    lines += ["## Training step (forward + backward), median; ratio to the torch.nn module", "",
              f"| cell | T, N, H | torch.nn ms | {names} |", "|---" * 6 + "|", *train_rows, "",
              "## Inference (forward, no_grad), median; ratio to the torch.nn module", "",
              f"| cell | T, N, H | torch.nn ms | {names} |", "|---" * 6 + "|", *infer_rows, "",
              "## Peak GPU memory growth of a training step, MB", "",
              f"| cell | T, N, H | torch.nn | {names} | held after a first call: torch.nn | fused "
              "| first call ms: torch.nn | fused (capture) |", "|---" * 10 + "|",
              *memory_rows, "",
              "## Generation: 2-layer LSTM, H = 512, batch 1, one token at a time (the graph is captured first)", "",
              *generation_rows(device="cuda"), ""]
    return "\n".join(lines)
