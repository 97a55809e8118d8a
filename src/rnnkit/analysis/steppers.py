"""Driving a recurrent network one time step at a time, with every state a tensor of the autograd graph.

A :class:`Stepper` serves the measurements that need each step's state: gradient flow through time
(:mod:`.gradients`) and the hidden units of a trained language model (:mod:`.activations`). ``cell_stepper`` takes
a one-step cell; ``layer_stepper`` a stack: rnnkit's ``RNN``/``LSTM``/``GRU`` (``torch.nn``'s converted), the
parallel-scan ``MinGRU``/``MinLSTM`` (stepped by their cell equations), or AWD-LSTM's stack of one layer per level
(sizes may differ between levels). Each level feeds its new state itself (not a copy) to the level above, so the
gradient autograd keeps for ``h^k_t`` is the total derivative: through the recurrence and up the stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from torch import Tensor, nn

from ..cells import LSTMCell

State = Tensor | tuple[Tensor, ...]
Step = Callable[[Tensor, State], State]


@dataclass
class Stepper:
    """How to drive a network one step at a time.

    ``step(x_t (N, I), state) -> state``; ``init(N, like) -> state`` (zeros); ``hidden(state) -> {name: (N, H)}``
    splits a state (or a gradient shaped like one) into named layers; ``run(x (T, N, I), state) -> state`` runs
    a whole sequence at once (optional: a faster path for measurements that need no intermediate state).
    ``cell_state``: the state also holds each layer's LSTM cell ``c``, after the ``h`` of every layer.
    """

    step: Step
    init: Callable[[int, Tensor], State]
    hidden: Callable[[State], dict]
    run: Callable[[Tensor, State], State] | None = None
    cell_state: bool = False

    def run_all(self, x: Tensor) -> State:
        state = self.init(x.shape[1], x)
        if self.run is not None:
            return self.run(x, state)
        for t in range(x.shape[0]):
            state = self.step(x[t], state)
        return state


def cell_stepper(cell: nn.Module) -> Stepper:
    """A :class:`Stepper` for a one-step cell (``cell(x_t, state) -> state``): rnnkit's or ``torch.nn``'s
    ``RNNCell``/``LSTMCell``/``GRUCell``, or :class:`~rnnkit.analysis.gradients.LinearRNNCell`. The state is
    ``h`` or ``(h, c)``."""
    lstm = isinstance(cell, (nn.LSTMCell, LSTMCell))

    def init(batch: int, like: Tensor) -> State:
        zero = like.new_zeros(batch, cell.hidden_size)
        return (zero, zero.clone()) if lstm else zero

    def step(x: Tensor, state: State) -> State:
        out = cell(x, state)
        return tuple(out) if lstm else out

    def hidden(state: State) -> dict[str, Tensor]:
        return {"layer 1": state[0] if lstm else state}

    return Stepper(step, init, hidden, cell_state=lstm)


class Level(NamedTuple):
    """One level of a stack: ``step(x (N, I), h, c) -> (h, c)``, ``run(x (T, N, I), h, c) -> (out, h, c)``
    (``c`` None without a cell state), its state size."""

    step: Callable
    run: Callable
    size: int


def _recurrent_levels(layer: nn.Module, engine: str) -> list[Level]:
    from ..engine import run_direction

    def level(k: int) -> Level:
        def step(x, h, c):
            _, h, c = run_direction(layer.cell, x.unsqueeze(0), h, c, layer.layer_weights(k, 0), engine=engine)
            return h, c

        def run(x, h, c):
            return run_direction(layer.cell, x, h, c, layer.layer_weights(k, 0), engine=engine)
        return Level(step, run, layer.hidden_size)
    return [level(k) for k in range(layer.num_layers)]


def _minimal_levels(layer: nn.Module) -> list[Level]:
    from ..cells.minimal import minimal_step
    from ..engine.scan import run_minimal

    def level(k: int) -> Level:
        weight, bias = layer.layer_weights(k, 0)

        def step(x, h, c):
            return minimal_step(layer.kind, x, h, weight, bias, layer.log_space), None

        def run(x, h, c):
            out, h = run_minimal(layer.kind, x, h, weight, bias, scan=layer.scan, positive=layer.log_space)
            return out, h, None
        return Level(step, run, layer.hidden_size)
    return [level(k) for k in range(layer.num_layers)]


def _levels(layer: nn.Module, engine: str | None) -> tuple[list[Level], bool]:
    """The levels of ``layer`` and whether they keep an LSTM cell state."""
    from ..layers import GRU, LSTM, RNN, MinimalLayer
    for torch_cls, ours in ((nn.LSTM, LSTM), (nn.GRU, GRU), (nn.RNN, RNN)):
        if isinstance(layer, torch_cls):
            layer = ours.from_torch(layer, engine=engine or "auto")
    if isinstance(layer, MinimalLayer):
        parts = [layer]
    elif isinstance(getattr(layer, "layers", None), nn.ModuleList):   # AWD-LSTM: one layer per level
        parts = list(layer.layers)
    else:
        parts = [layer]
    levels, cell_state = [], False
    for part in parts:
        if getattr(part, "bidirectional", False):
            raise ValueError("gradient flow through time needs a unidirectional layer")
        if isinstance(part, MinimalLayer):
            levels += _minimal_levels(part)
        elif hasattr(part, "layer_weights") and hasattr(part, "cell"):
            levels += _recurrent_levels(part, engine or (part.engine if part.engine != "torch" else "auto"))
            cell_state = part.cell.has_cell_state
        else:
            raise TypeError(f"expected an rnnkit or torch.nn recurrent layer, got {type(layer).__name__}")
    return levels, cell_state


def layer_stepper(layer: nn.Module, engine: str | None = None) -> Stepper:
    """A :class:`Stepper` for a stacked, unidirectional recurrent layer (module docstring), in evaluation mode (no
    dropout between layers). The state is the tuple ``(h^1, ..., h^L)``, for an LSTM ``(h^1, ..., h^L, c^1, ...,
    c^L)``, each (N, H_k). (A cell state ``c_t`` also reaches ``h_t`` inside the step, so its measured gradient
    would miss that path: only ``h`` is reported.) ``engine`` overrides the layer's own (``torch.nn`` layers run
    on ``auto`` unless told)."""
    levels, lstm = _levels(layer, engine)
    n = len(levels)

    def init(batch: int, like: Tensor) -> State:
        zeros = tuple(like.new_zeros(batch, lv.size) for lv in levels)
        return zeros + (tuple(z.clone() for z in zeros) if lstm else ())

    def split(state: State) -> tuple[list, list]:
        return list(state[:n]), (list(state[n:]) if lstm else [None] * n)

    def step(x: Tensor, state: State) -> State:
        hs, cs = split(state)
        inp = x
        for k, lv in enumerate(levels):
            hs[k], cs[k] = lv.step(inp, hs[k], cs[k])
            inp = hs[k]
        return tuple(hs) + (tuple(cs) if lstm else ())

    def run(x: Tensor, state: State) -> State:
        hs, cs = split(state)
        inp = x
        for k, lv in enumerate(levels):            # the whole sequence per level, as the layer runs in eval mode
            inp, hs[k], cs[k] = lv.run(inp, hs[k], cs[k])
        return tuple(hs) + (tuple(cs) if lstm else ())

    def hidden(state: State) -> dict[str, Tensor]:
        return {f"layer {k + 1}": state[k] for k in range(n)}

    return Stepper(step, init, hidden, run, cell_state=lstm)
