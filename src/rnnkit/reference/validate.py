"""Checking the caller's arrays against the torch.nn conventions, with messages that say what is wrong.

Parameters are in torch.nn layout, G = number of gate blocks (RNN 1, LSTM 4: i f g o, GRU 3: r z n)::

    weight_ih (G*H, I)    weight_hh (G*H, P)    bias_ih (G*H,)    bias_hh (G*H,)    weight_hr (P, H), LSTM only

and x is (T, N, I), h (N, P), the LSTM's c (N, H); P = H unless the LSTM projects its state (``weight_hr``,
torch's ``proj_size``). Everything is copied to float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .cells import REFERENCE_CELLS

CELLS = tuple(REFERENCE_CELLS)
GATES = {name: cell.gates for name, cell in REFERENCE_CELLS.items()}
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def check_cell(cell: str) -> None:
    """Raise ValueError unless ``cell`` is one of :data:`CELLS`."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; the reference takes the kernels' names: {', '.join(CELLS)} "
                         f"(rnnkit.cells.spec.recurrence(name).kernel turns 'rnn' or 'gru-torch' into one)")


def as_float64(name: str, a: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 copy of ``a``, which must have exactly ``shape``."""
    arr = np.array(a, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr


def check_params(cell: str, params: dict[str, np.ndarray | None], input_size: int,
                 ) -> dict[str, np.ndarray | None]:
    """float64 copies of the parameters (missing or None biases and weight_hr stay None); P comes from weight_hh,
    H from weight_hr where the LSTM has it."""
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"unknown parameter names {unknown}; expected {', '.join(PARAM_NAMES)}")
    for name in ("weight_ih", "weight_hh"):
        if params.get(name) is None:
            raise ValueError(f"params must contain {name!r}")
    G = GATES[cell]
    w_hh = np.asarray(params["weight_hh"])
    if w_hh.ndim != 2:
        raise ValueError(f"weight_hh has shape {w_hh.shape}, expected (G*H, H) with G={G} for {cell}")
    P = H = w_hh.shape[1]
    if params.get("weight_hr") is not None:
        if "c" not in REFERENCE_CELLS[cell].states:                # only a cell with a cell state projects h
            raise ValueError(f"weight_hr (a projection of the state) is the LSTM's only, not {cell}'s")
        H = w_hh.shape[0] // G
    expected = {"weight_ih": (G * H, input_size), "weight_hh": (G * H, P),
                "bias_ih": (G * H,), "bias_hh": (G * H,), "weight_hr": (P, H)}
    return {name: None if params.get(name) is None else as_float64(name, params[name], expected[name])
            for name in PARAM_NAMES}


def state_sizes(params: dict[str, np.ndarray | None]) -> tuple[int, int]:
    """(P, H): the sizes of h and of the LSTM's c, from checked parameters."""
    P = params["weight_hh"].shape[1]
    return P, (P if params.get("weight_hr") is None else params["weight_hr"].shape[1])


def check_state(cell: str, state: Any, batch: int, hidden: int | tuple[int, int],
                what: str = "state0") -> tuple[np.ndarray, ...]:
    """The state as a tuple of float64 arrays: (h,) or, for lstm, (h, c), each (N, its size in ``hidden``: one
    size for all, or (P, H)). None means zeros."""
    names = REFERENCE_CELLS[cell].states
    if state is None:
        state = (None,) * len(names)
    elif len(names) > 1:
        if not isinstance(state, (tuple, list)) or len(state) != len(names):
            raise ValueError(f"{what} for {cell} must be a tuple ({', '.join(names)}) or None")
    else:
        state = (state,)
    sizes = hidden if isinstance(hidden, tuple) else (hidden, hidden)
    return tuple(np.zeros((batch, size)) if s is None else as_float64(f"{what} {n}", s, (batch, size))
                 for n, s, size in zip(names, state, sizes))


def check_input(x: Any) -> np.ndarray:
    """x as a float64 (T, N, I) array."""
    arr = np.array(x, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"x has shape {arr.shape}, expected (T, N, I)")
    return arr
