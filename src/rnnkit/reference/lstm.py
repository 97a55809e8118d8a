"""The LSTM over a whole sequence: forward and backpropagation through time.

Forward, row vectors, gates in torch.nn order i, f, g, o (G = 4)::

    a_t = x_t U + h_{t-1} W + b          U = weight_ih.T (I, 4H), W = weight_hh.T (H, 4H),
    [a_i, a_f, a_g, a_o] = a_t           b = bias_ih + bias_hh, split into 4 blocks of H columns
    i_t = σ(a_i)   f_t = σ(a_f)          input, forget gates
    g_t = tanh(a_g)                      the candidate cell C~_t
    o_t = σ(a_o)                         output gate
    c_t = f_t * c_{t-1} + i_t * g_t      h_0, c_0 given (zeros by default)
    h_t = o_t * tanh(c_t)
    h_t = (o_t * tanh(c_t)) R            with a projection (torch's proj_size; Sak et al. 2014):
                                         R = weight_hr.T (H, P), h_t of size P, W (P, 4H)

Note: the lecture writes ``C_t = σ(f_t * C_{t-1} + i_t * C~_t)``. The LSTM everyone uses
(Hochreiter & Schmidhuber / Gers et al., torch.nn.LSTM, cuDNN) has no σ there, and neither
has this reference: c_t is the plain sum above.

Backward, t = T down to 1, ``dh`` and ``dc`` the gradients reaching h_t and c_t::

    dh  += dL/dh_t                       h_t is an output and feeds step t+1
    dR  += m_t^T dh,  dh = dh R^T        with a projection, m_t = o_t * tanh(c_t)
    do   = dh * tanh(c_t)
    dc  += dh * o_t * (1 - tanh(c_t)^2)  c_t reaches L through h_t and through c_{t+1}
    di   = dc * g_t    df = dc * c_{t-1}    dg = dc * i_t
    dc   = dc * f_t                      gradient reaching c_{t-1}
    da_t = [di σ', df σ', dg (1 - g_t^2), do σ']   with σ' = s (1 - s) of that gate's s
    dh   = da_t W^T                      the only product inside the loop

Weight, bias and input gradients follow after the loop for all steps at once (see :mod:`.common`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import add_bias_grads, bias_or_zero, input_grads, recurrent_weight_grads, sigmoid


def forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
            bias_ih: np.ndarray | None, bias_hh: np.ndarray | None, weight_hr: np.ndarray | None = None,
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """Run the LSTM over x (T, N, I) from h0 (N, P) and c0 (N, H); P = H without a projection ``weight_hr``.

    Returns ``(outputs, (h_T, c_T), saved)``: outputs (T, N, P) = h_1..h_T.
    """
    U, W = weight_ih.T, weight_hh.T
    b = bias_or_zero(bias_ih) + bias_or_zero(bias_hh)
    T, H = x.shape[0], c0.shape[1]
    h = np.empty((T + 1,) + h0.shape)             # h[t] = h_t, h[0] = h_0
    c = np.empty((T + 1,) + c0.shape)             # c[t] = c_t, c[0] = c_0
    m = np.empty((T,) + c0.shape)                 # m[t-1] = o_t tanh(c_t), before a projection
    gates = np.empty((T, h0.shape[0], 4 * H))     # gates[t-1] = [i_t, f_t, g_t, o_t] (after σ / tanh)
    h[0], c[0] = h0, c0
    for t in range(1, T + 1):
        a = x[t - 1] @ U + h[t - 1] @ W + b                       # a_t = x_t U + h_{t-1} W + b
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
        g = np.tanh(a[:, 2 * H:3 * H])                            # candidate C~_t
        c[t] = f * c[t - 1] + i * g                               # c_t = f c_{t-1} + i g   (no σ)
        m[t - 1] = o * np.tanh(c[t])                              # h_t = o tanh(c_t)
        h[t] = m[t - 1] if weight_hr is None else m[t - 1] @ weight_hr.T   # ... or (o tanh(c_t)) R
        gates[t - 1] = np.concatenate([i, f, g, o], axis=1)
    saved = dict(x=x, h=h, c=c, m=m, gates=gates, weight_ih=weight_ih, weight_hh=weight_hh,
                 bias_ih=bias_ih, bias_hh=bias_hh, weight_hr=weight_hr)
    return h[1:], (h[T], c[T]), saved


def backward(saved: dict[str, Any], d_outputs: np.ndarray,
             d_final: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Backpropagation through time. Returns the gradients of x, h0, c0 and every parameter."""
    x, h, c, gates, weight_hh = saved["x"], saved["h"], saved["c"], saved["gates"], saved["weight_hh"]
    weight_hr = saved["weight_hr"]
    T = x.shape[0]
    dA = np.empty_like(gates)                     # dA[t-1] = dL/da_t, the gate pre-activations
    dh, dc = d_final[0].copy(), d_final[1].copy()  # gradients reaching h_T and c_T
    d_weight_hr = None if weight_hr is None else np.zeros_like(weight_hr)
    for t in range(T, 0, -1):
        i, f, g, o = np.split(gates[t - 1], 4, axis=1)
        tanh_c = np.tanh(c[t])
        dh = dh + d_outputs[t - 1]                # h_t is also an output
        if weight_hr is not None:                 # h_t = m_t R: dR^T += dh^T m_t, dm_t = dh R^T
            d_weight_hr += dh.T @ saved["m"][t - 1]
            dh = dh @ weight_hr
        do = dh * tanh_c                          # h_t = o tanh(c_t)
        dc = dc + dh * o * (1.0 - tanh_c ** 2)    #   ... and through c_t
        di, df, dg = dc * g, dc * c[t - 1], dc * i  # c_t = f c_{t-1} + i g
        dc = dc * f                               # gradient reaching c_{t-1}
        dA[t - 1] = np.concatenate([di * i * (1.0 - i),       # σ'(a_i) = i (1 - i)
                                    df * f * (1.0 - f),
                                    dg * (1.0 - g ** 2),      # tanh'(a_g) = 1 - g^2
                                    do * o * (1.0 - o)], axis=1)
        dh = dA[t - 1] @ weight_hh                # dh_{t-1} = da_t W^T = da_t weight_hh
    dx, d_weight_ih, d_bias_ih = input_grads(x, dA, saved["weight_ih"])
    d_weight_hh, d_bias_hh = recurrent_weight_grads(h[:-1], dA)      # inputs h_0..h_{T-1}
    grads = {"x": dx, "h0": dh, "c0": dc, "weight_ih": d_weight_ih, "weight_hh": d_weight_hh}
    if weight_hr is not None:
        grads["weight_hr"] = d_weight_hr
    return add_bias_grads(grads, saved["bias_ih"], d_bias_ih, saved["bias_hh"], d_bias_hh)
