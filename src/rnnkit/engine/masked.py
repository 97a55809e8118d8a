"""The Python BPTT loops with recurrent dropout and zoneout: :mod:`.bptt`'s contract plus three masks.

=============  =============  ==========================================================================
``h_mask``     (N, H)         recurrent dropout: 0 or 1/(1-p), multiplies ``h_{t-1}`` before the recurrent
                              matmul only (the state carried on and GRU's ``z * h_{t-1}`` are not dropped)
``zh``         (T, N, H)      zoneout of ``h``: ``h_t = zh_t * h_{t-1} + (1 - zh_t) * h^_t`` (0/1 in training,
                              ``p`` in evaluation); ``zc`` (T, N, H) the same for the LSTM's cell
=============  =============  ==========================================================================

Any of them may be ``None``. Saved for the backward, beyond :mod:`.bptt`'s: nothing for the LSTM and the GRUs
(the unzoned ``C^_t``, ``h^_t`` are recomputed from the gates), the activation ``h^_t`` (T, N, H) for the RNN
with zoneout (in the ``gates`` slot). Backward of each addition, beside its forward::

    hd = h_{t-1} * m               dh_{t-1} += d(hd) * m;   dW = dG^T (H_prev * m)
    h_t = lerp(h^_t, h_{t-1}, z)   dh^_t = dh_t (1 - z);    dh_{t-1} += dh_t z      (C likewise)
"""
from __future__ import annotations

import torch
from torch import Tensor

from .loop_steps import carry as _carry, lstm_gate_grads, settle as _settle, split as _split


def _z(zs: Tensor | None, t: int) -> Tensor | None:
    return None if zs is None else zs[t]


def _zone(new: Tensor, prev: Tensor, z: Tensor | None) -> Tensor:
    return new if z is None else torch.lerp(new, prev, z)           # z * prev + (1 - z) * new


def _unzone(d: Tensor, z: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``(d h^_t, the part of dh_t that goes straight to h_{t-1})``."""
    return (d, None) if z is None else (d * (1 - z), d * z)


def _plus(a: Tensor, b: Tensor | None) -> Tensor:
    return a if b is None else a + b


def _drop(h: Tensor, m: Tensor | None) -> Tensor:
    return h if m is None else h * m


# --------------------------------------------------------------------------- forward loops

def rnn_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc, relu: bool):
    wt = w_hh.t()
    act = None if zh is None else torch.empty_like(xp)
    for t in range(xp.shape[0]):
        m = None if mask is None else mask[t]
        a = torch.addmm(xp[t], _drop(hs[t], h_mask), wt)          # a_t = x_t U + b + (h_{t-1} * m) W
        a = a.relu_() if relu else a.tanh_()                        # h^_t = f(a_t)
        if act is not None:
            act[t] = a
        new = _zone(a, hs[t], _z(zh, t))                            # h_t = z h_{t-1} + (1 - z) h^_t
        hs[t + 1] = new if m is None else torch.where(m, new, hs[t])
    return () if act is None else (act,)


def lstm_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc):
    T, N, GH = xp.shape
    gates = torch.empty_like(xp)
    wt = w_hh.t()
    for t in range(T):
        a = torch.addmm(xp[t], _drop(hs[t], h_mask), wt, out=gates[t])
        H = GH // 4
        a[:, :2 * H].sigmoid_()
        a[:, 2 * H:3 * H].tanh_()
        a[:, 3 * H:].sigmoid_()
        i, f, g, o = a.chunk(4, 1)
        c_hat = f * cs[t] + i * g                                   # C^_t = f C_{t-1} + i C~
        h_hat = o * torch.tanh(c_hat)                               # h^_t = o tanh(C^_t)
        m = None if mask is None else mask[t]
        c_new, h_new = _zone(c_hat, cs[t], _z(zc, t)), _zone(h_hat, hs[t], _z(zh, t))
        cs[t + 1] = c_new
        hs[t + 1] = h_new
        _settle(cs[t + 1], c_new, cs[t], m)
        _settle(hs[t + 1], h_new, hs[t], m)
    return (gates,)


def gru_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc):
    T, _, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    w_rz, w_n = w_hh[:2 * H].t(), w_hh[2 * H:].t()
    for t in range(T):
        h = hs[t]
        hd = _drop(h, h_mask)
        rz = torch.addmm(xp[t, :, :2 * H], hd, w_rz, out=gates[t, :, :2 * H]).sigmoid_()
        r, z = rz.chunk(2, 1)
        n = torch.addmm(xp[t, :, 2 * H:], r * hd, w_n, out=gates[t, :, 2 * H:]).tanh_()  # (r * h * m) W_n
        new = _zone(torch.lerp(n, h, z), h, _z(zh, t))
        m = None if mask is None else mask[t]
        hs[t + 1] = new if m is None else torch.where(m, new, h)
    return (gates,)


def gru_reset_after_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc):
    T, N, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    hw_n = xp.new_empty(T, N, H)
    wt = w_hh.t()
    for t in range(T):
        h = hs[t]
        gh = _drop(h, h_mask) @ wt
        rz = torch.add(xp[t, :, :2 * H], gh[:, :2 * H], out=gates[t, :, :2 * H]).sigmoid_()
        r, z = rz.chunk(2, 1)
        ghn = gh[:, 2 * H:] if b_hn is None else gh[:, 2 * H:] + b_hn
        hw_n[t] = ghn
        n = torch.addcmul(xp[t, :, 2 * H:], r, ghn, out=gates[t, :, 2 * H:]).tanh_()
        new = _zone(torch.lerp(n, h, z), h, _z(zh, t))
        m = None if mask is None else mask[t]
        hs[t + 1] = new if m is None else torch.where(m, new, h)
    return (gates, hw_n)


# --------------------------------------------------------------------------- backward loops

def rnn_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc, relu: bool):
    T = dY.shape[0]
    dG = torch.empty_like(dY)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        d, straight = _unzone(d, _z(zh, t))
        h = saved[0][t] if zh is not None else hs[t + 1]
        da = d * (h > 0) if relu else d * (1 - h * h)
        dG[t] = da
        dh = _carry(_plus(_drop(da @ w_hh, h_mask), straight), keep)
    return dG, dG, dh, None


def lstm_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc):
    gates = saved[0]
    T = dY.shape[0]
    dG = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        m = None if mask is None else mask[t]
        dh_new, dh_keep = _split(dh + dY[t], m)
        dc_new, dc_keep = _split(dc, m)
        dh_hat, dh_straight = _unzone(dh_new, _z(zh, t))
        dc_hat, dc_straight = _unzone(dc_new, _z(zc, t))
        i, f, g, o = gates[t].chunk(4, 1)
        c_hat = cs[t + 1] if zc is None else f * cs[t] + i * g
        tc = torch.tanh(c_hat)
        dct = dc_hat + dh_hat * o * (1 - tc * tc)                  # dC^_t
        lstm_gate_grads(dG[t], (i, f, g, o), dct, dh_hat, tc, cs[t])
        dc = _carry(_plus(dct * f, dc_straight), dc_keep)
        dh = _carry(_plus(_drop(dG[t] @ w_hh, h_mask), dh_straight), dh_keep)
    return dG, dG, dh, dc


def gru_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc):
    (gates,) = saved
    T, _, GH = gates.shape
    H = GH // 3
    w_rz, w_n = w_hh[:2 * H], w_hh[2 * H:]
    dG = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        d, straight = _unzone(d, _z(zh, t))
        h = hs[t]
        hd = _drop(h, h_mask)
        r, z, n = gates[t].chunk(3, 1)
        dr, dz, dn = dG[t].chunk(3, 1)
        torch.mul(d * (1 - z), 1 - n * n, out=dn)
        torch.mul(d * (h - n), z * (1 - z), out=dz)
        drh = dn @ w_n                                              # d(r * h * m)
        torch.mul(drh * hd, r * (1 - r), out=dr)
        dhd = torch.addmm(drh * r, dG[t, :, :2 * H], w_rz)          # d(h * m)
        dh = _carry(_plus(d * z + _drop(dhd, h_mask), straight), keep)
    return dG, dG, dh, None


def gru_reset_after_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc):
    gates, hw_n = saved
    T, _, GH = gates.shape
    H = GH // 3
    dGx = torch.empty_like(gates)
    dGh = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        d, straight = _unzone(d, _z(zh, t))
        h = hs[t]
        r, z, n = gates[t].chunk(3, 1)
        dr, dz, dn = dGx[t].chunk(3, 1)
        torch.mul(d * (1 - z), 1 - n * n, out=dn)
        torch.mul(d * (h - n), z * (1 - z), out=dz)
        torch.mul(dn * hw_n[t], r * (1 - r), out=dr)
        dGh[t, :, :2 * H] = dGx[t, :, :2 * H]
        torch.mul(dn, r, out=dGh[t, :, 2 * H:])
        dh = _carry(_plus(d * z + _drop(dGh[t] @ w_hh, h_mask), straight), keep)
    return dGx, dGh, dh, None


def recurrent_weight_grad(reset_before_matmul: bool, gh: Tensor, hs: Tensor, saved: tuple,
                          h_mask: Tensor | None) -> Tensor:
    """``dG^T (H_prev * m)`` over all steps in one matmul (Cho's GRU: ``r * h * m`` for ``W_n``)."""
    T1, N, H = hs.shape
    h_prev = _drop(hs[:-1], h_mask).reshape(-1, H)
    if not reset_before_matmul:
        return gh.t() @ h_prev
    r = saved[0][:, :, :H].reshape(-1, H)
    return torch.cat([gh[:, :2 * H].t() @ h_prev, gh[:, 2 * H:].t() @ (r * h_prev)])


LOOPS = {
    "rnn_tanh": (lambda *a: rnn_forward(*a, relu=False), lambda *a: rnn_backward(*a, relu=False)),
    "rnn_relu": (lambda *a: rnn_forward(*a, relu=True), lambda *a: rnn_backward(*a, relu=True)),
    "lstm": (lstm_forward, lstm_backward),
    "gru": (gru_forward, gru_backward),
    "gru_reset_after": (gru_reset_after_forward, gru_reset_after_backward),
}
