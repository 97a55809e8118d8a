"""minGRU and minLSTM (Feng et al. 2024) in NumPy float64: forward, backpropagation through time by hand, and
the log-space forward (Heinsen 2023). No torch: the oracle for :mod:`rnnkit.engine.scan`.

Row vectors, ``U = weight_ih.T`` split into column blocks (no recurrent weights); ``φ`` is the identity, or the
positive activation ``g`` with ``positive=True`` (the paper's log-space version)::

    minGRU   gates [k_z | p] = x_t U + b            minLSTM   gates [k_f | k_i | p] = x_t U + b
             z_t  = σ(k_z)                                    f_t = σ(k_f),  i_t = σ(k_i)
             h~_t = φ(p)                                      a_t = f'_t = f_t / (f_t + i_t)
             h_t  = (1 - z_t) h_{t-1} + z_t h~_t              h~_t = φ(p)
                                                              h_t = a_t h_{t-1} + (1 - a_t) h~_t

    g(p) = p + 1/2 (p >= 0),  σ(p) (p < 0);      g'(p) = 1 (p >= 0),  σ(p)(1 - σ(p)) (p < 0)

Backward, t = T down to 1, ``dh`` the gradient reaching h_t (``h_t = a_t h_{t-1} + b_t``, a reverse scan)::

    dh   += dL/dh_t
    minGRU:   dk_z = dh (h~_t - h_{t-1}) z_t (1 - z_t)      dp = dh z_t φ'(p)         dh_{t-1} = (1 - z_t) dh
    minLSTM:  dA   = dh (h_{t-1} - h~_t) a_t (1 - a_t)      (dL/d(log f - log i), as a_t = σ(log f - log i))
              dk_f = dA (1 - f_t)     dk_i = -dA (1 - i_t)  dp = dh (1 - a_t) φ'(p)   dh_{t-1} = a_t dh

then, once for all steps, ``d weight_ih = dG^T X``, ``dx = dG weight_ih``, ``d bias_ih = Σ dG``
(:func:`.common.input_grads`).

Log space (``positive=True``): ``a* = cumsum(log a)``, ``h_t = e^{a*_t} h_0 + exp(a*_t + logcumsumexp(log b - a*)_t)``,
with ``log a``, ``log b`` from softplus terms (``log σ(k) = -softplus(-k)``), never from ``a`` and ``b``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import input_grads, sigmoid
from .gradcheck import numerical_gradient, relative_error

GATES = {"mingru": 2, "minlstm": 3}


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x), without overflow."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def g(p: np.ndarray) -> np.ndarray:
    """The positive activation: p + 1/2 for p >= 0, σ(p) below."""
    return np.where(p >= 0, p + 0.5, sigmoid(p))


def g_grad(p: np.ndarray) -> np.ndarray:
    s = sigmoid(p)
    return np.where(p >= 0, 1.0, s * (1.0 - s))


def log_g(p: np.ndarray) -> np.ndarray:
    return np.where(p >= 0, np.log(np.maximum(p, 0.0) + 0.5), -softplus(-p))


def _check(cell: str, x: np.ndarray, h0: np.ndarray, weight_ih: np.ndarray) -> int:
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; expected one of {tuple(GATES)}")
    H = h0.shape[1]
    if x.ndim != 3 or h0.shape != (x.shape[1], H) or weight_ih.shape != (GATES[cell] * H, x.shape[2]):
        raise ValueError(f"{cell}: x (T, N, I), h0 (N, H), weight_ih ({GATES[cell]}H, I) expected; got "
                         f"{x.shape}, {h0.shape}, {weight_ih.shape}")
    return H


def forward(cell: str, x: np.ndarray, h0: np.ndarray | None, weight_ih: np.ndarray,
            bias_ih: np.ndarray | None = None, positive: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run ``cell`` over x (T, N, I) from h0 (N, H) (zeros if None). Returns ``(outputs, h_T, cache)``."""
    if h0 is None:
        h0 = np.zeros((x.shape[1], weight_ih.shape[0] // GATES.get(cell, 1)))
    H = _check(cell, x, h0, weight_ih)
    T = x.shape[0]
    pre = x @ weight_ih.T + (0.0 if bias_ih is None else bias_ih)   # all steps' gates: one matmul
    h = np.empty((T + 1,) + h0.shape)
    h[0] = h0
    for t in range(1, T + 1):
        p = pre[t - 1, :, -H:]
        h_tilde = g(p) if positive else p                            # h~_t = φ(p)
        if cell == "mingru":
            z = sigmoid(pre[t - 1, :, :H])                           # z_t = σ(k_z)
            h[t] = (1.0 - z) * h[t - 1] + z * h_tilde                # h_t = (1 - z) h_{t-1} + z h~
        else:
            f, i = sigmoid(pre[t - 1, :, :H]), sigmoid(pre[t - 1, :, H:2 * H])
            a = f / (f + i)                                          # f' = f / (f + i)
            h[t] = a * h[t - 1] + (1.0 - a) * h_tilde                # h_t = f' h_{t-1} + i' h~,  i' = 1 - f'
    cache = dict(cell=cell, x=x, h=h, pre=pre, weight_ih=weight_ih, bias_ih=bias_ih, positive=positive)
    return h[1:], h[T], cache


def backward(cache: dict[str, Any], d_outputs: np.ndarray, d_hT: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Backpropagation through time (the reverse scan). Returns the gradients of x, h0, weight_ih, bias_ih."""
    cell, x, h, pre, positive = cache["cell"], cache["x"], cache["h"], cache["pre"], cache["positive"]
    T, H = x.shape[0], h.shape[2]
    dG = np.empty_like(pre)
    dh = np.zeros_like(h[0]) if d_hT is None else d_hT.copy()      # gradient reaching h_T from after it
    for t in range(T, 0, -1):
        dh = dh + d_outputs[t - 1]                                  # h_t is also an output
        p = pre[t - 1, :, -H:]
        h_tilde, dphi = (g(p), g_grad(p)) if positive else (p, 1.0)
        if cell == "mingru":
            z = sigmoid(pre[t - 1, :, :H])
            dG[t - 1, :, :H] = dh * (h_tilde - h[t - 1]) * z * (1.0 - z)   # through z_t
            dG[t - 1, :, H:] = dh * z * dphi                               # through h~_t
            dh = (1.0 - z) * dh                                            # dh_{t-1} = a_t dh_t
        else:
            f, i = sigmoid(pre[t - 1, :, :H]), sigmoid(pre[t - 1, :, H:2 * H])
            a = f / (f + i)
            dA = dh * (h[t - 1] - h_tilde) * a * (1.0 - a)                  # a = σ(log f - log i)
            dG[t - 1, :, :H] = dA * (1.0 - f)                              # d log σ(k) / dk = 1 - σ(k)
            dG[t - 1, :, H:2 * H] = -dA * (1.0 - i)
            dG[t - 1, :, 2 * H:] = dh * (1.0 - a) * dphi
            dh = a * dh
    dx, d_weight_ih, d_bias_ih = input_grads(x, dG, cache["weight_ih"])
    grads = {"x": dx, "h0": dh, "weight_ih": d_weight_ih}
    if cache["bias_ih"] is not None:
        grads["bias_ih"] = d_bias_ih
    return grads


def log_coefficients(cell: str, pre: np.ndarray, H: int) -> tuple[np.ndarray, np.ndarray]:
    """``(log a, log b)`` of the log-space version from the pre-activations (T, N, G*H)."""
    log_gp = log_g(pre[..., -H:])
    if cell == "mingru":
        k = pre[..., :H]
        return -softplus(k), -softplus(-k) + log_gp                     # log(1 - z), log z + log g(p)
    d = softplus(-pre[..., H:2 * H]) - softplus(-pre[..., :H])          # log f - log i
    return -softplus(-d), -softplus(d) + log_gp                         # log f', log i' + log g(p)


def forward_log(cell: str, x: np.ndarray, h0: np.ndarray | None, weight_ih: np.ndarray,
                bias_ih: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The log-space version computed in log space (Heinsen): ``(outputs, h_T)``, equal to
    ``forward(..., positive=True)``."""
    if h0 is None:
        h0 = np.zeros((x.shape[1], weight_ih.shape[0] // GATES.get(cell, 1)))
    H = _check(cell, x, h0, weight_ih)
    pre = x @ weight_ih.T + (0.0 if bias_ih is None else bias_ih)
    log_a, log_b = log_coefficients(cell, pre, H)
    a_star = np.cumsum(log_a, axis=0)                                   # a*_t = Σ_{s<=t} log a_s
    h = np.exp(a_star) * h0 + np.exp(a_star + np.logaddexp.accumulate(log_b - a_star, axis=0))
    return h, h[-1]


def check_gradients(cell: str, x: np.ndarray, h0: np.ndarray, weight_ih: np.ndarray,
                    bias_ih: np.ndarray | None = None, positive: bool = False, seed: int = 0,
                    eps: float = 1e-6) -> dict[str, float]:
    """Relative error of :func:`backward` against central differences, per gradient, for the loss
    ``L = Σ outputs * R + Σ h_T * R_T`` with fixed random weights R."""
    rng = np.random.default_rng(seed)
    x, h0, weight_ih = x.copy(), h0.copy(), weight_ih.copy()
    bias_ih = None if bias_ih is None else bias_ih.copy()
    outputs, h_T, cache = forward(cell, x, h0, weight_ih, bias_ih, positive)
    R, R_T = rng.normal(size=outputs.shape), rng.normal(size=h_T.shape)
    grads = backward(cache, R, R_T)

    def loss() -> float:
        out, last, _ = forward(cell, x, h0, weight_ih, bias_ih, positive)
        return float((out * R).sum() + (last * R_T).sum())

    arrays = {"x": x, "h0": h0, "weight_ih": weight_ih, **({"bias_ih": bias_ih} if bias_ih is not None else {})}
    return {name: relative_error(grads[name], numerical_gradient(loss, a, eps)) for name, a in arrays.items()}
