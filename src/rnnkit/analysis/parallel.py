"""The lecture's first drawback, measured: "harder to parallelize". Training-step time against the sequence length.

For each T, one layer (input size = hidden size) takes a forward and backward step on a random (T, N, H) input;
the contenders take turns (round robin, so a busy machine slows them alike) and the median is kept:

* the sequential cells on rnnkit's compiled time loop (``rnnkit.LSTM``, ``rnnkit.GRU``) and ``torch.nn.LSTM``;
* ``rnnkit.MinGRU`` and ``rnnkit.MinLSTM``, whose gates read ``x_t`` alone, so a scan runs all steps at once.

:func:`measure` gives the times, :func:`table` the markdown, :func:`plot` the PNG (time against T, log-log).
``benchmarks/parallel_scan.py`` is the fuller benchmark (input projections alone, the torch and log-space scans).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn

CONTENDERS = ("rnnkit.LSTM", "rnnkit.GRU", "nn.LSTM", "MinGRU", "MinLSTM")


def _layers(H: int) -> dict[str, nn.Module]:
    from ..layers import GRU, LSTM, MinGRU, MinLSTM
    return {"rnnkit.LSTM": LSTM(H, H), "rnnkit.GRU": GRU(H, H), "nn.LSTM": nn.LSTM(H, H),
            "MinGRU": MinGRU(H, H), "MinLSTM": MinLSTM(H, H)}


def _step(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        out, _ = layer(x)
        out.backward(grad)
        layer.zero_grad(set_to_none=True)
        x.grad = None
    return run


def measure(lengths: list[int], batch: int, hidden: int, rounds: int = 5,
            progress: Callable[[str], None] | None = None) -> dict[int, dict[str, float]]:
    """``{T: {contender: median seconds of one training step}}``."""
    torch.manual_seed(0)
    layers = _layers(hidden)
    results = {}
    for T in lengths:
        x = torch.randn(T, batch, hidden, requires_grad=True)
        grad = torch.randn(T, batch, hidden)
        steps = {name: _step(layer, x, grad) for name, layer in layers.items()}
        for run in steps.values():                # warm-up (builds the compiled engine once)
            run()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(rounds):
            for name, run in steps.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
        results[T] = {name: statistics.median(v) for name, v in times.items()}
        if progress:
            progress(f"T={T}: " + ", ".join(f"{n} {t * 1e3:.1f} ms" for n, t in results[T].items()))
    return results


def table(results: dict[int, dict[str, float]]) -> str:
    """Markdown: milliseconds per step, and how many times faster than the compiled LSTM each contender is."""
    head = "| T | " + " | ".join(f"{n} ms" for n in CONTENDERS) + " | LSTM / MinGRU | LSTM / MinLSTM |"
    lines = [head, "|" + "---|" * (len(CONTENDERS) + 3)]
    for T, r in results.items():
        cells = " | ".join(f"{r[n] * 1e3:.1f}" for n in CONTENDERS)
        lines.append(f"| {T} | {cells} | {r['rnnkit.LSTM'] / r['MinGRU']:.2f}× | "
                     f"{r['rnnkit.LSTM'] / r['MinLSTM']:.2f}× |")
    return "\n".join(lines)


def plot(results: dict[int, dict[str, float]], path, title: str) -> None:
    """Time per training step against T, log-log, one line per contender."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lengths = list(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in CONTENDERS:
        ax.plot(lengths, [results[T][name] * 1e3 for T in lengths], marker="o", label=name,
                linestyle="--" if name.startswith("Min") else "-")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("training step (ms, median)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
