"""The cells the NumPy reference knows, by the engine's names: gate count, state names, forward and backward.

Each ``forward(x, state, weight_ih, weight_hh, bias_ih, bias_hh)`` (the LSTM's also ``weight_hr=``) takes the
state as a tuple of arrays (``(h,)`` or ``(h, c)``) and returns ``(outputs, final, saved)``, ``final`` as the
caller holds it (``h`` or ``(h, c)``); each ``backward(saved, d_outputs, d_final)`` takes ``d_final`` as a tuple
like the state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import gru, lstm, rnn


@dataclass(frozen=True)
class ReferenceCell:
    gates: int
    states: tuple[str, ...]
    forward: Callable
    backward: Callable


def _rnn(activation: str) -> ReferenceCell:
    return ReferenceCell(1, ("h",), lambda x, s, *w: rnn.forward(x, s[0], *w, activation=activation),
                         lambda saved, d, f: rnn.backward(saved, d, f[0]))


def _gru(reset_after: bool) -> ReferenceCell:
    return ReferenceCell(3, ("h",), lambda x, s, *w: gru.forward(x, s[0], *w, reset_after=reset_after),
                         lambda saved, d, f: gru.backward(saved, d, f[0]))


REFERENCE_CELLS: dict[str, ReferenceCell] = {
    "rnn_tanh": _rnn("tanh"),
    "rnn_relu": _rnn("relu"),
    "lstm": ReferenceCell(4, ("h", "c"), lambda x, s, *w, **hr: lstm.forward(x, s[0], s[1], *w, **hr),
                          lstm.backward),
    "gru": _gru(False),
    "gru_reset_after": _gru(True),
}
