"""The one description of each recurrence: what the engine, layers, models, analysis and the CLI ask.

A :class:`Recurrence` names a cell's gate blocks, whether it carries a cell state, its one-step function, its
``torch.nn`` twin (or none), the keyword arguments that build its layer, and the name of the engine kernel that
runs it. Code past argument parsing holds a ``Recurrence``, never a cell-name string.

Adding a cell: write its equations in ``cells/<name>.py`` (a step function and an ``nn.Module`` cell), its kernel
in ``engine/`` (the Python BPTT loops in ``bptt.KERNELS``; the compiled loop in ``csrc/`` if it has one), and its
description here (appended to ``RECURRENCES``). Nothing else changes: layers, models and the CLI read the table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from torch import Tensor, nn

from .gru import gru_step
from .lstm import lstm_step
from .minimal import min_gru_step, min_lstm_step
from .rnn import rnn_step

State = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True, eq=False)
class Recurrence:
    """One recurrence, everything the rest of rnnkit needs to know about it (compared by identity).

    ``step(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh) -> state``, where ``state`` is ``h`` or, with a
    cell state, ``(h, C)``. ``kernel`` is the engine's key for its loops (the compiled engine's ``mode``).
    """

    name: str                               # the user's name: --cell NAME, config.json's "cell"
    kernel: str                             # the engine's loops for it: bptt.KERNELS, the C++ Mode
    gate_names: tuple[str, ...]             # gate blocks of weight_ih / weight_hh, in torch.nn's order
    step: Callable[..., State]
    description: str
    has_cell_state: bool = False            # carries C beside h (state is (h, C))
    forget_gate: int | None = None          # index of the forget gate's block, where forget_bias applies
    torch_class: type[nn.Module] | None = None   # the torch.nn layer with the same weights, or None
    torch_kwargs: dict[str, Any] = field(default_factory=dict)   # what that torch.nn layer needs to match
    layer_kwargs: dict[str, Any] = field(default_factory=dict)   # what rnnkit's layer needs to be this one
    saved_per_step: int = 1                 # floats per (step, row, unit) the BPTT forward keeps
    scanned: bool = False                   # no recurrent weight W: a parallel scan runs it (rnnkit.layers.minimal)

    @property
    def gates(self) -> int:
        """``G``: the number of gate blocks, so weights are (G*H, ...)."""
        return len(self.gate_names)

    def pack(self, h: Tensor, c: Tensor | None) -> State:
        """The state as callers hold it: ``(h, C)`` with a cell state, else ``h``."""
        return (h, c) if self.has_cell_state else h

    def unpack(self, state: State) -> tuple[Tensor, Tensor | None]:
        """``(h, C or None)`` from a state as :meth:`pack` makes it."""
        return (state[0], state[1]) if self.has_cell_state else (state, None)

    def __repr__(self) -> str:
        return f"Recurrence({self.name!r})"


RNN_TANH = Recurrence("rnn", "rnn_tanh", ("a",), partial(rnn_step, nonlinearity="tanh"),
                      "the Elman RNN, h_t = tanh(x_t U + h_{t-1} W + b)",
                      torch_class=nn.RNN, torch_kwargs={"nonlinearity": "tanh"},
                      layer_kwargs={"nonlinearity": "tanh"}, saved_per_step=1)
RNN_RELU = Recurrence("rnn-relu", "rnn_relu", ("a",), partial(rnn_step, nonlinearity="relu"),
                      "the Elman RNN with relu", torch_class=nn.RNN, torch_kwargs={"nonlinearity": "relu"},
                      layer_kwargs={"nonlinearity": "relu"}, saved_per_step=1)
LSTM = Recurrence("lstm", "lstm", ("i", "f", "g", "o"), lstm_step,
                  "the LSTM (Hochreiter & Schmidhuber, forget gate of Gers et al.)", has_cell_state=True,
                  forget_gate=1, torch_class=nn.LSTM, saved_per_step=6)
GRU = Recurrence("gru", "gru", ("r", "z", "n"), partial(gru_step, reset_after=False),
                 "the lecture's GRU (Cho et al. 2014, reset before the recurrent matmul; use reset_after=True "
                 "for PyTorch's)",
                 layer_kwargs={"reset_after": False}, saved_per_step=4)
GRU_TORCH = Recurrence("gru-torch", "gru_reset_after", ("r", "z", "n"), partial(gru_step, reset_after=True),
                       "PyTorch/cuDNN's GRU: reset after the recurrent matmul", torch_class=nn.GRU,
                       layer_kwargs={"reset_after": True}, saved_per_step=5)

MIN_GRU = Recurrence("mingru", "mingru", ("z", "h"), min_gru_step,
                     "the minimal GRU (Feng et al. 2024), gates from x_t alone, run by a parallel scan", scanned=True)
MIN_LSTM = Recurrence("minlstm", "minlstm", ("f", "i", "h"), min_lstm_step,
                      "the minimal LSTM (Feng et al. 2024), gates from x_t alone, run by a parallel scan",
                      scanned=True)

RECURRENCES: tuple[Recurrence, ...] = (LSTM, GRU, GRU_TORCH, RNN_TANH, RNN_RELU)   # the engine's time loops
SCANNED: tuple[Recurrence, ...] = (MIN_GRU, MIN_LSTM)                              # the parallel scan's
SEQUENTIAL_NAMES: tuple[str, ...] = tuple(r.name for r in RECURRENCES)
CELL_NAMES: tuple[str, ...] = SEQUENTIAL_NAMES + tuple(r.name for r in SCANNED)


def recurrence(cell: str | Recurrence) -> Recurrence:
    """The description of a cell from its user-facing name (``lstm``, ``gru``, ``gru-torch``, ``rnn``,
    ``rnn-relu``, ``mingru``, ``minlstm``) or its kernel name (``rnn_tanh``, ``gru_reset_after``, ...); a
    ``Recurrence`` passes through."""
    if isinstance(cell, Recurrence):
        return cell
    for r in RECURRENCES + SCANNED:
        if cell in (r.name, r.kernel):
            return r
    raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(CELL_NAMES)}")
