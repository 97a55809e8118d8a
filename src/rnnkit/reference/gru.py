"""The GRU over a whole sequence, in both forms: forward and backpropagation through time.

Row vectors, gates in torch.nn order r, z, n (G = 3). ``U = weight_ih.T`` (I, 3H) and
``W = weight_hh.T`` (H, 3H) split into column blocks U_r, U_z, U_n and W_r, W_z, W_n
(= the row blocks of weight_ih, weight_hh); likewise b_i* = bias_ih blocks, b_h* = bias_hh::

    r_t = σ(x_t U_r + b_ir + h_{t-1} W_r + b_hr)                  reset gate
    z_t = σ(x_t U_z + b_iz + h_{t-1} W_z + b_hz)                  update gate
    n_t = tanh(x_t U_n + b_in + (r_t * h_{t-1}) W_n + b_hn)       reset_after=False (the lecture's,
                                                                  Cho et al. 2014)
    n_t = tanh(x_t U_n + b_in + r_t * (h_{t-1} W_n + b_hn))       reset_after=True (torch.nn.GRU, cuDNN)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                         h_0 given (zeros by default)

The lecture writes ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``: its z is our 1 - z (torch.nn's
convention, used here). The two forms differ only in where r_t is applied: before the
recurrent product (lecture) or after it (so that all three h_{t-1} W products are one matmul).

Backward, t = T down to 1, ``dh`` the gradient reaching h_t::

    dh  += dL/dh_t
    dn   = dh * (1 - z_t)    dz = dh * (h_{t-1} - n_t)    dh_prev = dh * z_t
    dan  = dn * (1 - n_t^2)                               gradient of n's pre-activation
    daz  = dz * z_t (1 - z_t)
    reset_after=True:   q_t = h_{t-1} W_n + b_hn
        dq = dan * r_t      dr = dan * q_t
    reset_after=False:  q_t = (r_t * h_{t-1}) W_n + b_hn
        dq = dan            d(r h) = dq W_n^T     dr = d(r h) * h_{t-1}     dh_prev += d(r h) * r_t
    dar  = dr * r_t (1 - r_t)
    dh_prev += [dar, daz, dq] W^T        (reset_after=False: only [dar, daz] [W_r, W_z]^T here)

The input side sees ``[dar, daz, dan]``, the recurrent side ``[dar, daz, dq]``; after the loop
d weight_ih = dGx^T X and d weight_hh = dGh^T (recurrent inputs), where the n block's recurrent
input is h_{t-1} (reset_after=True) or r_t * h_{t-1} (reset_after=False).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import add_bias_grads, bias_or_zero, input_grads, recurrent_weight_grads, sigmoid


def forward(x: np.ndarray, h0: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
            bias_ih: np.ndarray | None, bias_hh: np.ndarray | None,
            reset_after: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run the GRU over x (T, N, I) from h0 (N, H); ``reset_after`` picks the form (see above).

    Returns ``(outputs, h_T, saved)``: outputs (T, N, H) = h_1..h_T.
    """
    T, H = x.shape[0], h0.shape[1]
    b_i = np.broadcast_to(bias_or_zero(bias_ih), (3 * H,))
    b_h = np.broadcast_to(bias_or_zero(bias_hh), (3 * H,))
    W_rz, W_n = weight_hh[:2 * H].T, weight_hh[2 * H:].T        # [W_r, W_z] (H, 2H) and W_n (H, H)
    h = np.empty((T + 1,) + h0.shape)             # h[t] = h_t, h[0] = h_0
    gates = np.empty((T, h0.shape[0], 3 * H))     # gates[t-1] = [r_t, z_t, n_t]
    q = np.empty((T,) + h0.shape)                 # q[t-1] = q_t, the recurrent term inside n_t
    h[0] = h0
    for t in range(1, T + 1):
        ax = x[t - 1] @ weight_ih.T + b_i                         # x_t U + b_i, all three gates
        ah = h[t - 1] @ W_rz + b_h[:2 * H]                        # h_{t-1} [W_r, W_z] + b_h
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H:2 * H] + ah[:, H:])
        if reset_after:
            q[t - 1] = h[t - 1] @ W_n + b_h[2 * H:]               # q = h_{t-1} W_n + b_hn
            n = np.tanh(ax[:, 2 * H:] + r * q[t - 1])             # n = tanh(x U_n + b_in + r q)
        else:
            q[t - 1] = (r * h[t - 1]) @ W_n + b_h[2 * H:]         # q = (r h_{t-1}) W_n + b_hn
            n = np.tanh(ax[:, 2 * H:] + q[t - 1])                 # n = tanh(x U_n + b_in + q)
        h[t] = (1.0 - z) * n + z * h[t - 1]                       # h_t = (1 - z) n + z h_{t-1}
        gates[t - 1] = np.concatenate([r, z, n], axis=1)
    saved = dict(x=x, h=h, gates=gates, q=q, weight_ih=weight_ih, weight_hh=weight_hh,
                 bias_ih=bias_ih, bias_hh=bias_hh, reset_after=reset_after)
    return h[1:], h[T], saved


def backward(saved: dict[str, Any], d_outputs: np.ndarray, d_hT: np.ndarray) -> dict[str, np.ndarray]:
    """Backpropagation through time. Returns the gradients of x, h0 and every parameter."""
    x, h, gates, q, weight_hh = saved["x"], saved["h"], saved["gates"], saved["q"], saved["weight_hh"]
    reset_after = saved["reset_after"]
    T, H = x.shape[0], h.shape[2]
    dGx = np.empty_like(gates)                    # gradients of the input-side pre-activations
    dGh = np.empty_like(gates)                    # gradients of the recurrent-side pre-activations
    dh = d_hT.copy()                              # gradient reaching h_T
    for t in range(T, 0, -1):
        r, z, n = np.split(gates[t - 1], 3, axis=1)
        dh = dh + d_outputs[t - 1]                # h_t is also an output
        dn = dh * (1.0 - z)                       # h_t = (1 - z) n + z h_{t-1}
        dz = dh * (h[t - 1] - n)
        dh_prev = dh * z
        dan = dn * (1.0 - n ** 2)                 # tanh'
        daz = dz * z * (1.0 - z)                  # σ'
        if reset_after:
            dq = dan * r                          # n = tanh(... + r q)
            dr = dan * q[t - 1]
        else:
            dq = dan                              # n = tanh(... + q),  q = (r h_{t-1}) W_n + b_hn
            d_rh = dq @ weight_hh[2 * H:]         # d(r h_{t-1}) = dq W_n^T
            dr = d_rh * h[t - 1]
            dh_prev = dh_prev + d_rh * r
        dar = dr * r * (1.0 - r)                  # σ'
        dGx[t - 1] = np.concatenate([dar, daz, dan], axis=1)
        dGh[t - 1] = np.concatenate([dar, daz, dq], axis=1)
        if reset_after:
            dh = dh_prev + dGh[t - 1] @ weight_hh                  # all three blocks see h_{t-1}
        else:
            dh = dh_prev + dGh[t - 1, :, :2 * H] @ weight_hh[:2 * H]   # r, z see h_{t-1}
    dx, d_weight_ih, d_bias_ih = input_grads(x, dGx, saved["weight_ih"])
    # Recurrent inputs per block: h_{t-1} for r and z; for n, h_{t-1} or r_t * h_{t-1}.
    h_prev = h[:-1]
    h_in_n = h_prev if reset_after else gates[:, :, :H] * h_prev
    d_w_rz, d_b_rz = recurrent_weight_grads(h_prev, dGh[:, :, :2 * H])
    d_w_n, d_b_n = recurrent_weight_grads(h_in_n, dGh[:, :, 2 * H:])
    grads = {"x": dx, "h0": dh, "weight_ih": d_weight_ih,
             "weight_hh": np.concatenate([d_w_rz, d_w_n], axis=0)}
    return add_bias_grads(grads, saved["bias_ih"], d_bias_ih,
                          saved["bias_hh"], np.concatenate([d_b_rz, d_b_n]))
