"""Finite differences: the independent check of every gradient ``backward`` returns.

For a scalar L and one entry θ_k of an array::

    dL/dθ_k ≈ (L(θ_k + ε) - L(θ_k - ε)) / (2ε)      error O(ε²) + rounding O(1e-16 / ε)

In float64, ε = 1e-6 leaves about 1e-9 or less of (relative) error, far below any real bug.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .api import State, backward, forward
from .validate import check_cell, check_input, check_params, check_state, state_sizes


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``array``.

    ``f`` takes no arguments and must read ``array``; each entry is perturbed in place by ±eps
    and restored afterwards. Returns an array of ``array``'s shape.
    """
    grad = np.zeros(array.shape)
    for k in np.ndindex(array.shape):
        old = array[k]
        array[k] = old + eps
        f_plus = f()
        array[k] = old - eps
        f_minus = f()
        array[k] = old                            # restore
        grad[k] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |analytic - numeric| divided by the gradient's scale max(|analytic|, |numeric|).

    Measured against the largest entry, so entries that are (nearly) zero do not give 0/0.
    Two all-zero gradients agree exactly: 0.
    """
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    return 0.0 if scale == 0.0 else float(np.abs(analytic - numeric).max() / scale)


def check_gradients(cell: str, x: np.ndarray, state0: State | None, params: dict[str, np.ndarray | None],
                    seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Compare ``backward`` with finite differences for every input of ``forward``.

    Draws random upstream gradients d_outputs and d_final (normal, from ``seed``), takes
    ``L = sum(d_outputs * outputs) + sum(d_final * final_state)`` and returns, for each of
    "x", "h0", ("c0"), "weight_ih", "weight_hh" and the biases present, the
    :func:`relative_error` between the analytic and numerical gradient.
    """
    check_cell(cell)
    # Our own float64 copies: these are the arrays the finite differences perturb.
    x = check_input(x)
    p = {k: v for k, v in check_params(cell, params, x.shape[2]).items() if v is not None}
    state = check_state(cell, state0, x.shape[1], state_sizes(p))
    paired = len(state) > 1                                   # (h, c): the LSTM
    s0 = state if paired else state[0]

    outputs, final, cache = forward(cell, x, s0, p)
    rng = np.random.default_rng(seed)
    d_out = rng.standard_normal(outputs.shape)
    d_final = tuple(rng.standard_normal(f.shape) for f in final) if paired \
        else rng.standard_normal(final.shape)
    grads = backward(cache, d_out, d_final)

    def loss() -> float:
        out, fin = forward(cell, x, s0, p)[:2]
        fins, dfins = (fin, d_final) if paired else ((fin,), (d_final,))
        return float(np.sum(d_out * out) + sum(np.sum(d * f) for d, f in zip(dfins, fins)))

    inputs = {"x": x, "h0": state[0], **({"c0": state[1]} if paired else {}), **p}
    return {name: relative_error(grads[name], numerical_gradient(loss, arr, eps)) for name, arr in inputs.items()}
