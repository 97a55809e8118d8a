"""Long-range memory experiments: the adding problem and the copy task, RNN vs LSTM vs GRU on the same budget.

**Adding problem** (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015 and Arjovsky et al. 2016).
A sequence of ``T`` steps with two input channels: a value drawn uniformly from ``[0, 1)`` and a marker that is
1 at exactly two steps — one in the first half (``t < T//2``), one in the second — and 0 elsewhere. The target,
read after the last step, is the sum of the two marked values. Always predicting its mean (1) gives the mean
squared error ``Var(U1 + U2) = 2/12 ≈ 0.167``: the baseline a network that can't remember stays at. ::

    t        0     1     2     3     4     5          (T = 6)
    value  0.3   0.9   0.1   0.6   0.2   0.8
    marker   0     1     0     0     1     0    →  target 0.9 + 0.2 = 1.1

**Copy task** (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016). ``S`` symbols from an alphabet of ``K``
(ids ``1..K``) are shown, then ``D - 1`` blanks (id 0), then a delimiter (id ``K+1``), then ``S`` blanks during
which the network must output the ``S`` symbols in order; every other output is a blank. Inputs are one-hot
(``K + 2`` channels), the sequence is ``T = 2S + D`` steps long, the delay between seeing a symbol and
writing it is ``S + D``. The error reported is the fraction of the ``S`` recalled symbols that are wrong
(guessing: ``1 - 1/K``); the loss is the cross-entropy over all ``T`` outputs, whose memoryless baseline
(blanks where they are certain, uniform over the symbols when recalling) is ``S log K / T``. ::

    S = 3, K = 8, D = 2:
    input   5 2 7 0 9 0 0 0        (9 = delimiter K+1)
    target  0 0 0 0 0 5 2 7

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
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.recurrent import make_recurrent


# --------------------------------------------------------------------------------------------- data

def adding_example(values, marks) -> tuple[Tensor, Tensor]:
    """One adding-problem sequence from explicit ``values`` (T,) and the two marked positions:
    ``x`` (T, 2) with channels (value, marker) and the target (1,)."""
    values = torch.as_tensor(values, dtype=torch.float32)
    marks = list(marks)
    if values.dim() != 1:
        raise ValueError("values must be one-dimensional")
    if len(marks) != 2 or len(set(marks)) != 2 or not all(0 <= m < len(values) for m in marks):
        raise ValueError(f"need two distinct marked positions inside 0..{len(values) - 1}, got {marks}")
    marker = torch.zeros_like(values)
    marker[marks] = 1.0
    return torch.stack([values, marker], dim=1), values[marks].sum().reshape(1)


def adding_batch(batch: int, T: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``x`` (T, batch, 2), ``y`` (batch, 1): values uniform in [0, 1), one marker in each half."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got {T}")
    half = T // 2
    values = torch.rand(batch, T, generator=generator)
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, T, (batch,), generator=generator)
    marker = torch.zeros(batch, T)
    rows = torch.arange(batch)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    x = torch.stack([values, marker], dim=2).transpose(0, 1).contiguous()
    return x, y


def copy_example(symbols, delay: int, alphabet: int = 8) -> tuple[Tensor, Tensor]:
    """One copy-task sequence from explicit ``symbols`` (ids 1..alphabet): input ids (T,) and target ids (T,)
    with ``T = 2 * len(symbols) + delay`` (layout in the module docstring)."""
    s = torch.as_tensor(symbols, dtype=torch.long)
    S = len(s)
    if S < 1 or delay < 1:
        raise ValueError(f"need at least one symbol and a delay >= 1, got {S} symbols and delay {delay}")
    if int(s.min()) < 1 or int(s.max()) > alphabet:
        raise ValueError(f"symbols must be ids 1..{alphabet}")
    T = 2 * S + delay
    x = torch.zeros(T, dtype=torch.long)
    y = torch.zeros(T, dtype=torch.long)
    x[:S] = s
    x[S + delay - 1] = alphabet + 1
    y[S + delay:] = s
    return x, y


def copy_batch(batch: int, delay: int, length: int = 10, alphabet: int = 8,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Input ids (T, batch) and target ids (T, batch), ``T = 2 * length + delay``."""
    if length < 1 or delay < 1:
        raise ValueError(f"need length >= 1 and delay >= 1, got {length} and {delay}")
    s = torch.randint(1, alphabet + 1, (length, batch), generator=generator)
    T = 2 * length + delay
    x = torch.zeros(T, batch, dtype=torch.long)
    y = torch.zeros(T, batch, dtype=torch.long)
    x[:length] = s
    x[length + delay - 1] = alphabet + 1
    y[length + delay:] = s
    return x, y


# --------------------------------------------------------------------------------------------- tasks

class AddingTask:
    """Regression on the last step; error = mean squared error."""

    name = "adding"
    input_size = 2
    output_size = 1
    error_name = "MSE"
    baseline = 1.0 / 6.0          # Var(U1 + U2) for U ~ uniform(0, 1): predicting the mean 1

    def __init__(self, delay: int) -> None:
        self.delay = delay
        self.steps = delay

    def batch(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return adding_batch(n, self.delay, generator)

    def encode(self, x: Tensor) -> Tensor:
        return x

    def outputs(self, hidden: Tensor) -> Tensor:       # (T, N, H) -> what the head reads
        return hidden[-1]

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(out, y)

    def error(self, out: Tensor, y: Tensor) -> float:
        return float(F.mse_loss(out, y))


class CopyTask:
    """Classification at every step; loss = cross-entropy over all steps, error = wrong recalled symbols."""

    name = "copy"
    error_name = "recall error"

    def __init__(self, delay: int, length: int = 10, alphabet: int = 8) -> None:
        self.delay, self.length, self.alphabet = delay, length, alphabet
        self.steps = 2 * length + delay
        self.input_size = alphabet + 2
        self.output_size = alphabet + 1
        self.baseline = 1.0 - 1.0 / alphabet
        self.loss_baseline = length * math.log(alphabet) / self.steps

    def batch(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return copy_batch(n, self.delay, self.length, self.alphabet, generator)

    def encode(self, x: Tensor) -> Tensor:
        return F.one_hot(x, self.input_size).float()

    def outputs(self, hidden: Tensor) -> Tensor:
        return hidden

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def error(self, out: Tensor, y: Tensor) -> float:
        recall = slice(self.steps - self.length, self.steps)
        return float((out[recall].argmax(-1) != y[recall]).float().mean())


TASKS: dict[str, Callable[..., object]] = {"adding": AddingTask, "copy": CopyTask}


def make_task(name: str, delay: int, **options):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    if delay < 2:
        raise ValueError(f"delay must be at least 2, got {delay}")
    return TASKS[name](delay, **options)


# --------------------------------------------------------------------------------------------- model

class MemoryModel(nn.Module):
    """Recurrent layer + linear head; the task says which steps the head reads."""

    def __init__(self, task, cell: str, hidden_size: int, num_layers: int = 1, engine: str = "auto",
                 forget_bias: float | None = None) -> None:
        super().__init__()
        self.task = task
        self.rnn = make_recurrent(cell, task.input_size, hidden_size, num_layers=num_layers, engine=engine,
                                  forget_bias=forget_bias if cell == "lstm" else None)
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
    ran = _engine_used(engine, model.rnn.mode)
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


def _engine_used(engine: str, mode: str) -> str:
    """What ``engine`` resolves to for this recurrence on the CPU (``auto``: fused if it can serve)."""
    from ..engine import ENGINES, resolve_engine
    if engine not in ENGINES:
        return engine
    try:
        return resolve_engine(engine, mode, torch.zeros(1, 1, 1))
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
             "steps | diverged |", "|---|---|---:|---:|---:|---:|---|"]
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
