"""The ``autograd`` engine: a plain autograd loop over the cells' step functions.

Slow and obviously right: it is what the hand-written BPTT in :mod:`rnnkit.engine.bptt` is tested against.
Same arguments and results as :func:`rnnkit.engine.bptt.run_bptt`. (Not to be confused with the NumPy reference
in :mod:`rnnkit.reference`, which runs without torch.)
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells.spec import Recurrence


def run_reference(cell: Recurrence, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple,
                  mask: Tensor | None, reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``cell`` over ``x`` (T, N, I); returns the states ``h_1..h_T`` (T, N, H), ``h_T`` and ``C_T``.
    ``reg``: a :class:`rnnkit.cells.extras.Regularisation` (masks, layer norm), step ``t`` gets ``reg.at(t)``."""
    state = cell.pack(h0, c0)
    masks = mask.unbind(0) if mask is not None else [None] * x.shape[0]
    hs = []
    extra = reg is not None and not reg.empty
    for t, (x_t, m_t) in enumerate(zip(x.unbind(0), masks)):   # unbind, never x[t]: backward quadratic in T
        new = cell.step(x_t, state, *weights, reg=reg.at(t)) if extra else cell.step(x_t, state, *weights)
        if m_t is not None:                         # past a sequence's end its state is held
            new = cell.pack(*(None if a is None else torch.where(m_t, a, b)
                              for a, b in zip(cell.unpack(new), cell.unpack(state))))
        state = new
        hs.append(cell.unpack(state)[0])
    h, c = cell.unpack(state)
    return torch.stack(hs), h, c
