"""The vanilla (Elman) RNN over a whole sequence: forward and backpropagation through time.

Forward, row vectors, one row per sequence in the batch::

    a_t = x_t U + h_{t-1} W + b          U = weight_ih.T (I, H), W = weight_hh.T (H, H),
    h_t = f(a_t)                         b = bias_ih + bias_hh, f = tanh or relu,
                                         h_0 given (zeros by default)

Backward, for a loss L whose gradients dL/dh_t (from the outputs) and dL/dh_T (from the
final state) are given. Going from t = T down to 1 with ``dh`` the gradient reaching h_t::

    dh   += dL/dh_t                      h_t is an output *and* feeds step t+1
    da_t  = dh * f'(a_t)                 tanh' = 1 - h_t^2, relu' = [a_t > 0]
    dh    = da_t W^T                     the only product inside the loop

and after the loop, for all steps at once, dU = X^T dA, dW = H_prev^T dA, db = sum dA,
dX = dA U^T (see :mod:`.common`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import add_bias_grads, bias_or_zero, input_grads, recurrent_weight_grads

ACTIVATIONS = ("tanh", "relu")


def forward(x: np.ndarray, h0: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
            bias_ih: np.ndarray | None, bias_hh: np.ndarray | None,
            activation: str = "tanh") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run the RNN over x (T, N, I) from h0 (N, H).

    Returns ``(outputs, h_T, saved)``: outputs (T, N, H) = h_1..h_T, and what backward needs.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    U, W = weight_ih.T, weight_hh.T
    b = bias_or_zero(bias_ih) + bias_or_zero(bias_hh)
    T = x.shape[0]
    h = np.empty((T + 1,) + h0.shape)             # h[0] = h_0, h[t] = h_t
    a = np.empty((T,) + h0.shape)                 # a[t-1] = a_t
    h[0] = h0
    for t in range(1, T + 1):
        a[t - 1] = x[t - 1] @ U + h[t - 1] @ W + b          # a_t = x_t U + h_{t-1} W + b
        h[t] = np.tanh(a[t - 1]) if activation == "tanh" else np.maximum(a[t - 1], 0.0)   # h_t = f(a_t)
    saved = dict(x=x, h=h, a=a, weight_ih=weight_ih, weight_hh=weight_hh,
                 bias_ih=bias_ih, bias_hh=bias_hh, activation=activation)
    return h[1:], h[T], saved


def backward(saved: dict[str, Any], d_outputs: np.ndarray, d_hT: np.ndarray) -> dict[str, np.ndarray]:
    """Backpropagation through time. Returns the gradients of x, h0 and every parameter."""
    x, h, a, weight_hh = saved["x"], saved["h"], saved["a"], saved["weight_hh"]
    T = x.shape[0]
    dA = np.empty_like(a)                         # dA[t-1] = dL/da_t
    dh = d_hT.copy()                              # gradient reaching h_T from the final state
    for t in range(T, 0, -1):
        dh = dh + d_outputs[t - 1]                # plus the gradient of h_t as an output
        if saved["activation"] == "tanh":
            dA[t - 1] = dh * (1.0 - h[t] ** 2)    # tanh'(a_t) = 1 - h_t^2
        else:
            dA[t - 1] = dh * (a[t - 1] > 0)       # relu'(a_t) = 1 where a_t > 0
        dh = dA[t - 1] @ weight_hh                # dh_{t-1} = da_t W^T = da_t weight_hh
    dx, d_weight_ih, d_bias_ih = input_grads(x, dA, saved["weight_ih"])
    d_weight_hh, d_bias_hh = recurrent_weight_grads(h[:-1], dA)      # inputs h_0..h_{T-1}
    grads = {"x": dx, "h0": dh, "weight_ih": d_weight_ih, "weight_hh": d_weight_hh}
    return add_bias_grads(grads, saved["bias_ih"], d_bias_ih, saved["bias_hh"], d_bias_hh)
