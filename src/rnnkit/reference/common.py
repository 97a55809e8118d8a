"""Pieces every cell shares: the sigmoid and the gradients taken once, after the backward loop.

All cells compute their gate pre-activations as ``x_t U + h_{t-1} W + b`` with
``U = weight_ih.T`` and ``W = weight_hh.T``. Once the backward loop has produced the
gate gradients ``dG_t`` of every step, the input-side gradients need no loop at all:
stack the T steps into one (T*N, G*H) matrix ``dG`` and the inputs into (T*N, I) ``X``;
then (because ``U = weight_ih.T``)::

    dU = X^T dG   ->   d weight_ih = dG^T X
    dX = dG U^T   =    dG weight_ih
    db = sum over rows of dG

and likewise ``d weight_hh = dG^T H_prev`` for the stacked recurrent inputs.
"""
from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-a), written so that it never overflows."""
    e = np.exp(-np.abs(a))                       # in (0, 1]: no overflow for large |a|
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def stack(a: np.ndarray) -> np.ndarray:
    """(T, N, K) -> (T*N, K): the time steps become extra rows of one matrix."""
    return a.reshape(-1, a.shape[-1])


def input_grads(x: np.ndarray, dG: np.ndarray, weight_ih: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the input side ``x_t U + b_ih`` given the gate gradients dG (T, N, G*H).

    Returns ``(dx, d weight_ih, d bias_ih)`` with shapes (T, N, I), (G*H, I), (G*H,).
    """
    dG2 = stack(dG)                               # (T*N, G*H)
    dx = (dG2 @ weight_ih).reshape(x.shape)       # dX = dG U^T = dG weight_ih
    d_weight_ih = dG2.T @ stack(x)                # dU = X^T dG, so d weight_ih = dG^T X
    return dx, d_weight_ih, dG2.sum(axis=0)       # db = sum_t sum_n dG_t


def recurrent_weight_grads(h_in: np.ndarray, dG: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the recurrent side ``h_in_t W + b_hh``: ``(d weight_hh, d bias_hh)``.

    ``h_in`` (T, N, H) holds the recurrent input of every step (normally h_0..h_{T-1}).
    """
    dG2 = stack(dG)
    return dG2.T @ stack(h_in), dG2.sum(axis=0)  # dW = H_prev^T dG, so d weight_hh = dG^T H_prev


def bias_or_zero(bias: np.ndarray | None) -> np.ndarray | float:
    """A missing bias adds nothing."""
    return 0.0 if bias is None else bias


def add_bias_grads(grads: dict[str, np.ndarray], bias_ih: np.ndarray | None, d_bias_ih: np.ndarray,
                   bias_hh: np.ndarray | None, d_bias_hh: np.ndarray) -> dict[str, np.ndarray]:
    """Put the bias gradients into ``grads``, but only for the biases that exist."""
    if bias_ih is not None:
        grads["bias_ih"] = d_bias_ih
    if bias_hh is not None:
        grads["bias_hh"] = d_bias_hh
    return grads
