"""Recurrent dropout and zoneout in NumPy float64: forward and BPTT by hand, the masks given as arguments.

Every cell of :mod:`.cells` (by the engine's kernel names), row vectors as in the other modules. The masks are
the engine's (:mod:`rnnkit.engine.masked`)::

    m      (N, H)     recurrent dropout: 0 or 1/(1-p); multiplies h_{t-1} before the recurrent product only
    zh     (T, N, H)  zoneout of h (1 = keep the previous value; p in evaluation); zc the LSTM's C

Forward, one step, ``hd = h_{t-1} * m``::

    RNN    a = x_t U + hd W + b                  h^ = f(a)
    LSTM   a = x_t U + hd W + b                  C^ = f C_{t-1} + i g        h^ = o tanh(C^)
           C_t = zc C_{t-1} + (1 - zc) C^
    GRU    r, z = σ(x_t U_rz + b_irz + hd W_rz + b_hrz)
           n = tanh(x_t U_n + b_in + (r * hd) W_n + b_hn)        (lecture)
           n = tanh(x_t U_n + b_in + r * (hd W_n + b_hn))        (reset_after)
           h^ = (1 - z) n + z h_{t-1}
    all    h_t = zh h_{t-1} + (1 - zh) h^

Backward, t = T down to 1, ``dh`` (``dc``) the gradient reaching h_t (C_t)::

    dh^ = dh (1 - zh)                 dh_{t-1} = dh zh + (through h^'s own use of h_{t-1}) + d(hd) * m
    LSTM  dC^ = dc (1 - zc) + dh^ o (1 - tanh² C^)    dC_{t-1} = dc zc + dC^ f
    the gate gradients dA as in the plain cells; d(hd) = dA W^T (lecture GRU: the n block through r * hd);
    after the loop d weight_hh = dA^T (H_prev * m) (lecture GRU's n block: (r * H_prev * m)).

Layer norm (``ln``, per gate block as :mod:`rnnkit.cells.extras`): ``a = LN(x_t U) + LN(hd W) + b`` (the
lecture GRU normalises ``hd W_rz`` and ``(r * hd) W_n`` each on its own), ``h^ = o tanh(LN(C^))`` for the LSTM;
the backward passes each gradient back through its LN (:func:`layer_norm_backward`) before the products.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import sigmoid

from dataclasses import dataclass


@dataclass(frozen=True)
class _Form:
    cell_state: bool = False      # the LSTM: carries C
    gru: bool = False             # the GRU family
    reset_before: bool = False    # the lecture's GRU: r multiplies h before W_n
    relu: bool = False            # the RNN with relu


_FORMS = {"rnn_tanh": _Form(), "rnn_relu": _Form(relu=True), "lstm": _Form(cell_state=True),
          "gru": _Form(gru=True, reset_before=True), "gru_reset_after": _Form(gru=True)}
KERNELS = tuple(_FORMS)


LN_EPS = 1e-5


def _b(bias, size):
    return np.zeros(size) if bias is None else np.asarray(bias, dtype=np.float64)


def layer_norm(v: np.ndarray, gain: np.ndarray, bias: np.ndarray, blocks: int):
    """LN per gate block: each of the ``blocks`` blocks of v (N, blocks*H) normalised over its H units, then
    ``* gain + bias``. Returns ``(y, cache)``."""
    w = v.reshape(v.shape[0], blocks, -1)
    mu = w.mean(-1, keepdims=True)
    inv = 1.0 / np.sqrt(((w - mu) ** 2).mean(-1, keepdims=True) + LN_EPS)
    xhat = (w - mu) * inv
    return xhat.reshape(v.shape) * gain + bias, (xhat, inv)


def layer_norm_backward(dy: np.ndarray, gain: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dv, d gain, d bias)`` of :func:`layer_norm`: with x^ = (v - μ)/σ per block,
    dv = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / σ, dx^ = dy * gain."""
    xhat, inv = cache
    dxh = (dy * gain).reshape(xhat.shape)
    dv = inv * (dxh - dxh.mean(-1, keepdims=True) - xhat * (dxh * xhat).mean(-1, keepdims=True))
    return dv.reshape(dy.shape), (dy * xhat.reshape(dy.shape)).sum(0), dy.sum(0)


class _Norms:
    """The layer norms of one run (``ln`` = {"ih": (g, b), "hh": (g, b), "c": (g, b)}), or the identity."""

    def __init__(self, ln: dict | None) -> None:
        self.ln = ln
        self.caches: dict[tuple, Any] = {}

    def __call__(self, name: str, t: int, v: np.ndarray, blocks: int, part: slice = slice(None)) -> np.ndarray:
        if self.ln is None:
            return v
        g, b = self.ln[name]
        y, self.caches[name, t, part.start] = layer_norm(v, g[part], b[part], blocks)
        return y

    def back(self, name: str, t: int, dy: np.ndarray, grads: dict, part: slice = slice(None)) -> np.ndarray:
        if self.ln is None:
            return dy
        g, _ = self.ln[name]
        dv, dg, db = layer_norm_backward(dy, g[part], self.caches[name, t, part.start])
        grads[f"ln_{name}_weight"][part] += dg
        grads[f"ln_{name}_bias"][part] += db
        return dv


def forward(kernel: str, x: np.ndarray, state0, params: dict, h_mask: np.ndarray | None = None,
            zoneout_h: np.ndarray | None = None, zoneout_c: np.ndarray | None = None, ln: dict | None = None):
    """Run ``kernel`` over x (T, N, I) from ``state0`` (h0, or (h0, c0) for the LSTM) with the masks (any may
    be None) and, with ``ln`` = {"ih": (gain, bias), "hh": (gain, bias), "c": (gain, bias) (LSTM)}, layer norm
    of x_t U and h_{t-1} W per gate block (and of C^ for the LSTM). Returns ``(outputs (T, N, H), final state,
    cache)``."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    x = np.asarray(x, dtype=np.float64)
    form = _FORMS[kernel]
    lstm = form.cell_state
    h0, c0 = (state0 if lstm else (state0, None))
    T, N, _ = x.shape
    H = h0.shape[1]
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    G = w_ih.shape[0] // H
    b_ih, b_hh = _b(params.get("bias_ih"), G * H), _b(params.get("bias_hh"), G * H)
    m = np.ones((N, H)) if h_mask is None else h_mask
    zh = np.zeros((T, N, H)) if zoneout_h is None else zoneout_h
    zc = np.zeros((T, N, H)) if zoneout_c is None else zoneout_c
    norm = _Norms(ln)
    rz, nb = slice(0, 2 * H), slice(2 * H, 3 * H)
    h = np.empty((T + 1, N, H))
    h[0] = h0
    c = np.empty((T + 1, N, H)) if lstm else None
    if lstm:
        c[0] = c0
    acts = np.empty((T, N, G * H))            # activated gates (RNN: h^)
    extra = np.empty((T, N, H))               # LSTM: LN(C^) (C^ without LN); reset-after GRU: q
    chat = np.empty((T, N, H))                # LSTM: C^
    for t in range(T):
        hd = h[t] * m
        xu = norm("ih", t, x[t] @ w_ih.T, G) + b_ih                   # LN(x_t U) + b_i
        if not lstm and not form.gru:
            a = xu + norm("hh", t, hd @ w_hh.T, G) + b_hh
            hh = np.maximum(a, 0.0) if form.relu else np.tanh(a)
            acts[t] = hh
        elif lstm:
            a = xu + norm("hh", t, hd @ w_hh.T, G) + b_hh
            i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
            g = np.tanh(a[:, 2 * H:3 * H])
            acts[t] = np.concatenate([i, f, g, o], axis=1)
            chat[t] = f * c[t] + i * g                                   # C^
            extra[t] = norm("c", t, chat[t], 1)                          # LN(C^)
            hh = o * np.tanh(extra[t])
            c[t + 1] = zc[t] * c[t] + (1 - zc[t]) * chat[t]
        else:
            if form.reset_before:
                hw = norm("hh", t, hd @ w_hh[rz].T, 2, rz) + b_hh[rz]
            else:
                hw = norm("hh", t, hd @ w_hh.T, 3) + b_hh
            r, z = sigmoid(xu[:, :H] + hw[:, :H]), sigmoid(xu[:, H:2 * H] + hw[:, H:2 * H])
            if form.reset_before:
                n = np.tanh(xu[:, 2 * H:] + norm("hh", t, (r * hd) @ w_hh[nb].T, 1, nb) + b_hh[nb])
            else:
                extra[t] = hw[:, 2 * H:]                                  # q = LN(hd W)_n + b_hn
                n = np.tanh(xu[:, 2 * H:] + r * extra[t])
            acts[t] = np.concatenate([r, z, n], axis=1)
            hh = (1 - z) * n + z * h[t]
        h[t + 1] = zh[t] * h[t] + (1 - zh[t]) * hh
    cache = dict(kernel=kernel, x=x, h=h, c=c, acts=acts, extra=extra, chat=chat, m=m, zh=zh, zc=zc,
                 params=params, norm=norm)
    return h[1:], ((h[T], c[T]) if lstm else h[T]), cache


def backward(cache: dict[str, Any], d_outputs: np.ndarray, d_final) -> dict[str, np.ndarray]:
    """BPTT through the sequence ``cache`` came from: gradients of x, h0, (c0), every parameter given and, with
    layer norm, ``ln_{ih,hh,c}_{weight,bias}``."""
    kernel, x, h, c, acts, extra = (cache[k] for k in ("kernel", "x", "h", "c", "acts", "extra"))
    m, zh, zc, p, norm = cache["m"], cache["zh"], cache["zc"], cache["params"], cache["norm"]
    w_ih, w_hh = p["weight_ih"], p["weight_hh"]
    form = _FORMS[kernel]
    lstm = form.cell_state
    T, N, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    G = w_ih.shape[0] // H
    rz, nb = slice(0, 2 * H), slice(2 * H, 3 * H)
    grads: dict[str, np.ndarray] = {}
    if norm.ln is not None:
        for name, (g, _) in norm.ln.items():
            grads[f"ln_{name}_weight"] = np.zeros_like(g)
            grads[f"ln_{name}_bias"] = np.zeros_like(g)
    dh = np.array(d_final[0] if lstm else d_final, dtype=np.float64)
    dc = np.array(d_final[1], dtype=np.float64) if lstm else None
    dAx = np.empty((T, N, G * H))             # gradients of the gate pre-activations, input side (bias grads)
    dAh = np.empty((T, N, G * H))             # ... recurrent side
    dXU = np.empty((T, N, G * H))             # of x_t U (before its LN): d weight_ih, dx
    dHW = np.empty((T, N, G * H))             # of the recurrent products (before their LN): d weight_hh
    for t in range(T - 1, -1, -1):
        dh = dh + d_outputs[t]
        dhh, dprev = dh * (1 - zh[t]), dh * zh[t]                   # h_t = zh h_{t-1} + (1 - zh) h^
        hd = h[t] * m
        if not lstm and not form.gru:
            hh = acts[t]
            dAx[t] = dAh[t] = dhh * ((hh > 0) if form.relu else (1 - hh ** 2))
            dHW[t] = norm.back("hh", t, dAh[t], grads)
            dhd = dHW[t] @ w_hh
        elif lstm:
            i, f, g, o = np.split(acts[t], 4, axis=1)
            tc = np.tanh(extra[t])
            dchat = dc * (1 - zc[t]) + norm.back("c", t, dhh * o * (1 - tc ** 2), grads)
            dAx[t] = dAh[t] = np.concatenate([dchat * g * i * (1 - i), dchat * c[t] * f * (1 - f),
                                              dchat * i * (1 - g ** 2), dhh * tc * o * (1 - o)], axis=1)
            dc = dc * zc[t] + dchat * f
            dHW[t] = norm.back("hh", t, dAh[t], grads)
            dhd = dHW[t] @ w_hh
        else:
            r, z, n = np.split(acts[t], 3, axis=1)
            dprev = dprev + dhh * z
            dan = dhh * (1 - z) * (1 - n ** 2)
            daz = dhh * (h[t] - n) * z * (1 - z)
            if form.reset_before:
                dHW[t][:, nb] = norm.back("hh", t, dan, grads, nb)        # of (r * hd) W_n
                drh = dHW[t][:, nb] @ w_hh[nb]                             # d(r * hd)
                dar = drh * hd * r * (1 - r)
                dAx[t] = dAh[t] = np.concatenate([dar, daz, dan], axis=1)
                dHW[t][:, rz] = norm.back("hh", t, dAh[t][:, rz], grads, rz)
                dhd = drh * r + dHW[t][:, rz] @ w_hh[rz]
            else:
                dar = dan * extra[t] * r * (1 - r)
                dAx[t] = np.concatenate([dar, daz, dan], axis=1)
                dAh[t] = np.concatenate([dar, daz, dan * r], axis=1)
                dHW[t] = norm.back("hh", t, dAh[t], grads)
                dhd = dHW[t] @ w_hh
        dXU[t] = norm.back("ih", t, dAx[t], grads)
        dh = dprev + dhd * m
    X, XU, HW = x.reshape(T * N, -1), dXU.reshape(T * N, -1), dHW.reshape(T * N, -1)
    Hd = (h[:-1] * m).reshape(T * N, H)
    if form.reset_before:
        RHd = (acts[:, :, :H] * h[:-1] * m).reshape(T * N, H)
        d_w_hh = np.concatenate([HW[:, :2 * H].T @ Hd, HW[:, 2 * H:].T @ RHd])
    else:
        d_w_hh = HW.T @ Hd
    grads.update({"x": (XU @ w_ih).reshape(x.shape), "h0": dh, "weight_ih": XU.T @ X, "weight_hh": d_w_hh})
    if lstm:
        grads["c0"] = dc
    if p.get("bias_ih") is not None:
        grads["bias_ih"] = dAx.reshape(T * N, -1).sum(0)
    if p.get("bias_hh") is not None:
        grads["bias_hh"] = dAh.reshape(T * N, -1).sum(0)
    return grads
