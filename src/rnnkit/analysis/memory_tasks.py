"""The long-range memory tasks of the experiments: the adding problem and the copy task, as data and losses.

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
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

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
