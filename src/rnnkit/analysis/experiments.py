"""Long-range memory experiments: the adding problem and the copy task (:mod:`.memory_tasks`), RNN vs LSTM vs
GRU on the same budget.

:func:`run_experiment` trains each cell for the same number of steps with the same batch size, learning rate,
clipping, hidden size and seed (so the same data), evaluates on a fixed held-out batch, and returns one
:class:`RunResult` per (cell, delay). The LSTM's forget-gate bias starts at 1.0 (Jozefowicz et al. 2015) unless
told otherwise.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..layers import make_layer
from .memory_tasks import make_task


# --------------------------------------------------------------------------------------------- model

class MemoryModel(nn.Module):
    """Recurrent layer + linear head; the task says which steps the head reads."""

    def __init__(self, task, cell: str, hidden_size: int, num_layers: int = 1, engine: str = "auto",
                 forget_bias: float | None = None) -> None:
        super().__init__()
        self.task = task
        self.rnn = make_layer(cell, task.input_size, hidden_size, num_layers=num_layers, engine=engine,
                              forget_bias=forget_bias)
        self.head = nn.Linear(hidden_size, task.output_size)

    def forward(self, x: Tensor) -> Tensor:
        hidden, _ = self.rnn(self.task.encode(x))
        return self.head(self.task.outputs(hidden))


# --------------------------------------------------------------------------------------------- training

@dataclass
class RunResult:
    task: str
    cell: str
    delay: int
    error: float                  # on the held-out batch, after training (MSE or recall error)
    loss: float                   # held-out loss
    baseline: float               # the error of a network that remembers nothing
    steps: int
    seconds: float
    parameters: int
    clip: float
    diverged: bool = False        # the loss became NaN/inf (training stopped there)
    engine: str = ""              # the recurrence engine that ran (``auto`` resolved)
    curve: list = field(default_factory=list)        # [(step, training loss, gradient norm before clipping)]
    evals: list = field(default_factory=list)        # [(step, held-out error)]

    def to_dict(self) -> dict:
        return asdict(self)


def train_memory(task, cell: str, *, steps: int = 1000, batch_size: int = 64, hidden_size: int = 64,
                 lr: float = 2e-3, clip: float | None = 1.0, seed: int = 0, engine: str = "auto",
                 eval_size: int = 1000, eval_every: int = 0, log_every: int = 10, minutes: float | None = None,
                 forget_bias: float | None = 1.0, recurrent_scale: float = 1.0, num_layers: int = 1,
                 optimizer: str = "adam", progress: Callable[[str], None] | None = None) -> RunResult:
    """Train one cell on ``task`` with Adam (or SGD); the data depend only on ``seed``, so cells trained with
    the same seed see the same batches. ``clip`` 0/None: no clipping (the gradient norm is still recorded).
    ``recurrent_scale`` multiplies the initial recurrent weights (> 1: toward exploding gradients)."""
    torch.manual_seed(seed)
    model = MemoryModel(task, cell, hidden_size, num_layers, engine, forget_bias)
    if recurrent_scale != 1.0:
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith("weight_hh"):
                    p.mul_(recurrent_scale)
    ran = "scan" if model.rnn.cell.scanned else _engine_used(engine, model.rnn.cell)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr))
    data_gen = torch.Generator().manual_seed(seed + 1)
    x_eval, y_eval = task.batch(eval_size, torch.Generator().manual_seed(10_000 + seed))

    def evaluate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = model(x_eval)
        model.train()
        return task.error(out, y_eval), float(task.loss(out, y_eval))

    curve, evals = [], []
    diverged = False
    started = time.monotonic()
    step = 0
    for step in range(1, steps + 1):
        x, y = task.batch(batch_size, data_gen)
        loss = task.loss(model(x), y)
        if not torch.isfinite(loss):
            diverged = True
            curve.append((step, float("nan"), float("nan")))
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), clip if clip else float("inf"))
        opt.step()
        if step % log_every == 0 or step == 1:
            curve.append((step, loss.item(), float(norm)))
        if eval_every and step % eval_every == 0:
            evals.append((step, evaluate()[0]))
            if progress:
                progress(f"{task.name} T={task.delay} {cell}: step {step}, held-out {task.error_name} "
                         f"{evals[-1][1]:.4f}")
        if minutes is not None and time.monotonic() - started > 60 * minutes:
            break
    seconds = time.monotonic() - started
    error, loss_value = (float("nan"), float("nan")) if diverged else evaluate()
    if not diverged and (not evals or evals[-1][0] != step):
        evals.append((step, error))
    return RunResult(task=task.name, cell=cell, delay=task.delay, error=error, loss=loss_value,
                     baseline=task.baseline, steps=step, seconds=seconds,
                     parameters=sum(p.numel() for p in model.parameters()), clip=float(clip or 0.0),
                     diverged=diverged, engine=ran, curve=curve, evals=evals)


def _engine_used(engine: str, cell) -> str:
    """What ``engine`` resolves to for this recurrence on the CPU (``auto``: compiled if it can serve)."""
    from ..engine import resolve_engine
    try:
        return resolve_engine(engine, cell, torch.zeros(1, 1, 1))
    except RuntimeError:
        return engine


def run_experiment(task_name: str, cells: list[str], delays: list[int], *, task_options: dict | None = None,
                   progress: Callable[[str], None] | None = None, **train_options) -> list[RunResult]:
    """Every cell at every delay with the same budget (``train_options`` go to :func:`train_memory`)."""
    results = []
    for delay in delays:
        for cell in cells:
            task = make_task(task_name, delay, **(task_options or {}))
            result = train_memory(task, cell, progress=progress, **train_options)
            results.append(result)
            if progress:
                progress(f"{task_name} T={delay} {cell}: {task.error_name} {result.error:.4f} "
                         f"(baseline {result.baseline:.3f}) after {result.steps} steps, {result.seconds:.0f} s")
    return results


# --------------------------------------------------------------------------------------------- output

def results_table(results: list[RunResult]) -> str:
    """Markdown table: one row per delay, one column per cell, the final held-out error; baseline last."""
    if not results:
        return "(no results)"
    cells = list(dict.fromkeys(r.cell for r in results))
    delays = list(dict.fromkeys(r.delay for r in results))
    err = results[0].task == "adding" and "MSE" or "recall error"
    by = {(r.cell, r.delay): r for r in results}
    head = "| delay T | " + " | ".join(f"{c} {err}" for c in cells) + " | baseline |"
    lines = [head, "|" + "---:|" * (len(cells) + 2)]
    for d in delays:
        row = []
        for c in cells:
            r = by.get((c, d))
            row.append("—" if r is None else ("diverged" if r.diverged else f"{r.error:.4f}"))
        base = next(r.baseline for r in results if r.delay == d)
        lines.append(f"| {d} | " + " | ".join(row) + f" | {base:.3f} |")
    detail = [f"{r.cell} T={r.delay}: {r.steps} steps in {r.seconds:.0f} s"
              + (f" ({r.engine} engine)" if r.engine else "") + f", {r.parameters:,} parameters" for r in results]
    return "\n".join(lines) + "\n\n" + "; ".join(detail)


def plot_results(results: list[RunResult], path, title: str = "") -> None:
    """Final error against the delay (one line per cell, the memoryless baseline dashed) and the training
    curves of the longest delay."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.plots import save_figure
    cells = list(dict.fromkeys(r.cell for r in results))
    delays = sorted(set(r.delay for r in results))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, c in enumerate(cells):
        pts = sorted((r.delay, r.error) for r in results if r.cell == c and not r.diverged)
        if pts:
            ax.plot(*zip(*pts), "o-", label=c, color=f"C{i}")
    base = sorted({(r.delay, r.baseline) for r in results})
    if len({b for _, b in base}) == 1:                 # the same at every delay (both tasks): a horizontal line
        ax.axhline(base[0][1], color="k", linestyle="--", label="remembers nothing")
    else:
        ax.plot(*zip(*base), "k--", label="remembers nothing")
    ax.set_xticks(delays)
    ax.set_xlabel("delay T")
    ax.set_ylabel(f"held-out {results[0].task == 'adding' and 'MSE' or 'recall error'}")
    if results[0].task == "adding":
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    longest = delays[-1]
    for i, c in enumerate(cells):
        for r in results:
            if r.cell == c and r.delay == longest and r.curve:
                s, loss, _ = zip(*r.curve)
                ax2.plot(s, loss, label=c, color=f"C{i}", alpha=0.8)
    ax2.set_xlabel("step")
    ax2.set_ylabel(f"training loss (T={longest})")
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend()
    save_figure(fig, path, title)


# --------------------------------------------------------------------------------------------- clipping

def clip_comparison(cell: str, clip: float, *, task_name: str = "adding", delay: int = 50,
                    **train_options) -> tuple[RunResult, RunResult]:
    """The same model, data and optimizer trained twice: gradient norm clipped to ``clip``, and not clipped."""
    task = make_task(task_name, delay)
    with_clip = train_memory(task, cell, clip=clip, **train_options)
    without = train_memory(task, cell, clip=None, **train_options)
    return with_clip, without


def clip_table(pairs: list[tuple[RunResult, RunResult]]) -> str:
    lines = ["| cell | clipping | final held-out error | largest gradient norm | median gradient norm | "
             "steps | diverged (NaN or inf) |", "|---|---|---:|---:|---:|---:|---|"]
    for pair in pairs:
        for r in pair:
            norms = np.array([g for _, _, g in r.curve if math.isfinite(g)] or [float("nan")])
            lines.append(f"| {r.cell} | {'clip ' + format(r.clip, 'g') if r.clip else 'off'} | "
                         f"{'—' if r.diverged else format(r.error, '.4f')} | {np.max(norms):.3g} | "
                         f"{np.median(norms):.3g} | {r.steps} | {'yes' if r.diverged else 'no'} |")
    return "\n".join(lines)


def plot_clipping(pairs: list[tuple[RunResult, RunResult]], path, title: str = "") -> None:
    """Training loss and gradient norm against the step, clipped (solid) and not (dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.plots import save_figure
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, pair in enumerate(pairs):
        for r, style in zip(pair, ("-", "--")):
            if not r.curve:
                continue
            s, loss, norm = zip(*r.curve)
            label = f"{r.cell}, {'clip ' + format(r.clip, 'g') if r.clip else 'no clipping'}"
            ax.plot(s, loss, style, color=f"C{i}", label=label, alpha=0.85)
            ax2.plot(s, norm, style, color=f"C{i}", label=label, alpha=0.85)
    for a, name in ((ax, "training loss"), (ax2, "gradient norm (before clipping)")):
        a.set_xlabel("step")
        a.set_ylabel(name)
        a.set_yscale("log")
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8)
    save_figure(fig, path, title)
