"""One entry point for all cells: ``forward`` runs a sequence, ``backward`` runs BPTT through it.

The loss whose gradients ``backward`` returns is the one that makes the given upstream
gradients exact::

    L = sum(d_outputs * outputs) + sum(d_final * final_state)

so dL/d(outputs) = d_outputs and dL/d(final state) = d_final, as in any autograd engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .cells import REFERENCE_CELLS
from .validate import check_cell, check_input, check_params, check_state, state_sizes

State = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Cache:
    """What ``forward`` keeps for ``backward``: the cell name and the cell's saved arrays."""

    cell: str
    saved: dict[str, Any]
    output_shape: tuple[int, int, int]
    state_sizes: tuple[int, int]          # (P, H): h's size and the LSTM's c's


def forward(cell: str, x: np.ndarray, state0: State | None,
            params: dict[str, np.ndarray | None]) -> tuple[np.ndarray, State, Cache]:
    """Run ``cell`` over x (T, N, I) from ``state0`` in float64.

    ``cell`` is one of ``CELLS``; ``state0`` is h0 (N, H), or (h0, c0) for lstm, or None (zeros);
    ``params`` holds weight_ih, weight_hh and optionally bias_ih, bias_hh in torch.nn layout, and for an LSTM
    that projects its state weight_hr (P, H) (torch's ``proj_size``: h is then (N, P)).
    Returns ``(outputs, final_state, cache)``: outputs (T, N, P) = h_1..h_T, final_state = h_T
    or (h_T, c_T) for lstm.
    """
    check_cell(cell)
    x = check_input(x)
    p = check_params(cell, params, x.shape[2])
    sizes = state_sizes(p)
    state = check_state(cell, state0, x.shape[1], sizes)
    weights = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    extra = {} if p["weight_hr"] is None else {"weight_hr": p["weight_hr"]}
    outputs, final, saved = REFERENCE_CELLS[cell].forward(x, state, *weights, **extra)
    return outputs, final, Cache(cell, saved, outputs.shape, sizes)


def backward(cache: Cache, d_outputs: np.ndarray | None, d_final_state: State | None) -> dict[str, np.ndarray]:
    """Backpropagation through time for the sequence ``cache`` came from.

    ``d_outputs`` (T, N, H) and ``d_final_state`` (shaped like the final state; None = zeros)
    are dL/d(outputs) and dL/d(final state). Returns a dict of gradients with keys "x", "h0",
    "c0" (lstm only), "weight_ih", "weight_hh", "bias_ih" / "bias_hh" for the biases that exist, and "weight_hr"
    with a projection.
    """
    N = cache.output_shape[1]
    d_out = np.zeros(cache.output_shape) if d_outputs is None else \
        np.asarray(d_outputs, dtype=np.float64)
    if d_out.shape != cache.output_shape:
        raise ValueError(f"d_outputs has shape {d_out.shape}, expected {cache.output_shape}")
    d_final = check_state(cache.cell, d_final_state, N, cache.state_sizes, what="d_final_state")
    return REFERENCE_CELLS[cache.cell].backward(cache.saved, d_out, d_final)
