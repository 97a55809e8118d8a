"""The reference twin of the engine: a plain autograd loop over the cells' step functions.

Slow and obviously right: it is what the hand-written BPTT in :mod:`rnnkit.engine.bptt` is tested against.
Same arguments and results as :func:`rnnkit.engine.bptt.run_bptt`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells import gru_step, lstm_step, rnn_step


def _step_function(mode: str):
    if mode == "lstm":
        return lstm_step
    if mode in ("gru", "gru_reset_after"):
        reset_after = mode == "gru_reset_after"
        return lambda x, h, *w: gru_step(x, h, *w, reset_after=reset_after)
    nonlinearity = mode.split("_")[1]
    return lambda x, h, *w: rnn_step(x, h, *w, nonlinearity=nonlinearity)


def run_reference(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple,
                  mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``mode`` over ``x`` (T, N, I); returns the states ``h_1..h_T`` (T, N, H), ``h_T`` and ``C_T``."""
    step = _step_function(mode)
    state = (h0, c0) if mode == "lstm" else h0
    masks = mask.unbind(0) if mask is not None else [None] * x.shape[0]
    hs = []
    for x_t, m_t in zip(x.unbind(0), masks):        # unbind, never x[t]: indexing makes backward quadratic in T
        new = step(x_t, state, *weights)
        if m_t is not None:                         # past a sequence's end its state is held
            new = tuple(torch.where(m_t, a, b) for a, b in zip(new, state)) if mode == "lstm" \
                else torch.where(m_t, new, state)
        state = new
        hs.append(state[0] if mode == "lstm" else state)
    h_seq = torch.stack(hs)
    return (h_seq, state[0], state[1]) if mode == "lstm" else (h_seq, state, None)
