"""The Python BPTT loops with recurrent dropout, zoneout and layer norm: :mod:`.bptt`'s contract plus three masks
and a :class:`Norm`.

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
    a = xp + LN(hd W)              dA = LN'(dG);  dh_{t-1} += dA W^T;  dW = dA^T (H_prev * m)

Layer norm (rnnkit.cells.extras, per gate block) saves ``norm`` (T, N, 2GH [+H]) the normalised ``x U``, ``h W``
[and the LSTM's ``C^_t``], ``rstd`` (T, N, 2G [+1]) their 1/sigma per block, beside the gates. (The compiled loop
keeps only the ``h W`` part and rebuilds the rest in its backward; ``csrc/fused.h``.) ``LN(x U)``
is done by :func:`.bptt.forward_pass`, the rest here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cells.extras import LN_EPS
from .loop_steps import carry as _carry, lstm_gate_grads, settle as _settle, split as _split


def normalise(v: Tensor, blocks: int) -> tuple[Tensor, Tensor]:
    """``((v - mean) / sigma, 1 / sigma)`` per block of ``v`` (rows, blocks*H): (rows, blocks*H), (rows, blocks)."""
    w = v.reshape(v.shape[0], blocks, -1)
    centred = w - w.mean(-1, keepdim=True)
    rstd = (centred.square().mean(-1, keepdim=True) + LN_EPS).rsqrt()
    return (centred * rstd).view_as(v), rstd.squeeze(-1)


def normalise_backward(dy: Tensor, xh: Tensor, rstd: Tensor, gain: Tensor, blocks: int) -> Tensor:
    """``dv`` from ``dy``, the gradient of ``xh * gain + bias``: ``(e - mean(e) - xh mean(e xh)) / sigma``,
    e = dy gain."""
    n = dy.shape[0]
    e = (dy * gain).reshape(n, blocks, -1)
    x = xh.reshape(n, blocks, -1)
    return ((e - e.mean(-1, keepdim=True) - x * (e * x).mean(-1, keepdim=True)) * rstd.unsqueeze(-1)).view_as(dy)


@dataclass
class Norm:
    """Layer norm in the loops: the recurrent product's gains and biases (G*H,), the LSTM cell's (H,), the saved
    ``norm`` and ``rstd`` (module docstring) and, in the backward, ``dA`` (T, N, G*H), the gradient w.r.t. the raw
    recurrent product, and ``dlnc`` (T, N, H), w.r.t. the LSTM's ``LN(C^_t)``."""

    g: Tensor
    b: Tensor
    g_c: Tensor | None
    b_c: Tensor | None
    norm: Tensor
    rstd: Tensor
    dA: Tensor | None = None
    dlnc: Tensor | None = None

    def _at(self, k0: int, k1: int) -> tuple[slice, slice, slice]:
        G, H = self.rstd.shape[2] // 2, self.g.shape[0] // (self.rstd.shape[2] // 2)
        return slice(G * H + k0 * H, G * H + k1 * H), slice(G + k0, G + k1), slice(k0 * H, k1 * H)

    def forward(self, t: int, v: Tensor, k0: int, k1: int) -> Tensor:
        """``LN(v)`` of blocks ``k0..k1`` of step ``t``'s recurrent product, saving its values."""
        cols, stats, units = self._at(k0, k1)
        xh, rs = normalise(v, k1 - k0)
        self.norm[t, :, cols], self.rstd[t, :, stats] = xh, rs
        return xh * self.g[units] + self.b[units]

    def backward(self, t: int, dy: Tensor, k0: int, k1: int) -> Tensor:
        """The gradient w.r.t. the raw product's blocks ``k0..k1`` at step ``t``, into ``dA``, from ``dy``."""
        cols, stats, units = self._at(k0, k1)
        d = normalise_backward(dy, self.norm[t, :, cols], self.rstd[t, :, stats], self.g[units], k1 - k0)
        self.dA[t, :, units] = d
        return d

    def cell(self, t: int, c_hat: Tensor) -> Tensor:
        """The LSTM's ``LN(C^_t)``, saving its values."""
        H = c_hat.shape[1]
        xh, rs = normalise(c_hat, 1)
        self.norm[t, :, -H:], self.rstd[t, :, -1] = xh, rs[:, 0]
        return xh * self.g_c + self.b_c

    def cell_backward(self, t: int, dh_hat: Tensor, o: Tensor) -> tuple[Tensor, Tensor]:
        """From ``dh^_t`` (``h^_t = o_t tanh(LN(C^_t))``): ``(tanh(LN(C^_t)), the part of dC^_t through h^_t)``."""
        H = dh_hat.shape[1]
        xh, rs = self.norm[t, :, -H:], self.rstd[t, :, -1:]
        tc = torch.tanh(xh * self.g_c + self.b_c)
        dy = dh_hat * o * (1 - tc * tc)
        self.dlnc[t] = dy
        return tc, normalise_backward(dy, xh, rs, self.g_c, 1)


def _product(xp_t: Tensor, hd: Tensor, w: Tensor, ln: Norm | None, t: int, k0: int, k1: int, out: Tensor | None = None):
    """``xp_t + hd W`` or, under layer norm, ``xp_t + LN(hd W)`` (blocks ``k0..k1``)."""
    if ln is None:
        return torch.addmm(xp_t, hd, w, out=out)
    return torch.add(xp_t, ln.forward(t, hd @ w, k0, k1), out=out)


def _recurrent(d: Tensor, ln: Norm | None, t: int, k0: int, k1: int) -> Tensor:
    """The gradient the recurrent product's blocks ``k0..k1`` take: ``d`` itself, or through layer norm."""
    return d if ln is None else ln.backward(t, d, k0, k1)


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

def rnn_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc, ln=None, relu: bool = False):
    wt = w_hh.t()
    act = None if zh is None else torch.empty_like(xp)
    for t in range(xp.shape[0]):
        m = None if mask is None else mask[t]
        a = _product(xp[t], _drop(hs[t], h_mask), wt, ln, t, 0, 1)  # a_t = x_t U + b + [LN]((h_{t-1} * m) W)
        a = a.relu_() if relu else a.tanh_()                        # h^_t = f(a_t)
        if act is not None:
            act[t] = a
        new = _zone(a, hs[t], _z(zh, t))                            # h_t = z h_{t-1} + (1 - z) h^_t
        hs[t + 1] = new if m is None else torch.where(m, new, hs[t])
    return () if act is None else (act,)


def lstm_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc, ln=None):
    T, N, GH = xp.shape
    gates = torch.empty_like(xp)
    wt = w_hh.t()
    for t in range(T):
        a = _product(xp[t], _drop(hs[t], h_mask), wt, ln, t, 0, 4, out=gates[t])
        H = GH // 4
        a[:, :2 * H].sigmoid_()
        a[:, 2 * H:3 * H].tanh_()
        a[:, 3 * H:].sigmoid_()
        i, f, g, o = a.chunk(4, 1)
        c_hat = f * cs[t] + i * g                                   # C^_t = f C_{t-1} + i C~
        h_hat = o * torch.tanh(c_hat if ln is None else ln.cell(t, c_hat))  # h^_t = o tanh([LN](C^_t))
        m = None if mask is None else mask[t]
        c_new, h_new = _zone(c_hat, cs[t], _z(zc, t)), _zone(h_hat, hs[t], _z(zh, t))
        cs[t + 1] = c_new
        hs[t + 1] = h_new
        _settle(cs[t + 1], c_new, cs[t], m)
        _settle(hs[t + 1], h_new, hs[t], m)
    return (gates,)


def gru_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc, ln=None):
    T, _, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    w_rz, w_n = w_hh[:2 * H].t(), w_hh[2 * H:].t()
    for t in range(T):
        h = hs[t]
        hd = _drop(h, h_mask)
        rz = _product(xp[t, :, :2 * H], hd, w_rz, ln, t, 0, 2, out=gates[t, :, :2 * H]).sigmoid_()
        r, z = rz.chunk(2, 1)
        n = _product(xp[t, :, 2 * H:], r * hd, w_n, ln, t, 2, 3, out=gates[t, :, 2 * H:]).tanh_()  # (r * h * m) W_n
        new = _zone(torch.lerp(n, h, z), h, _z(zh, t))
        m = None if mask is None else mask[t]
        hs[t + 1] = new if m is None else torch.where(m, new, h)
    return (gates,)


def gru_reset_after_forward(xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc, ln=None):
    T, N, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    hw_n = xp.new_empty(T, N, H)
    wt = w_hh.t()
    for t in range(T):
        h = hs[t]
        gh = _drop(h, h_mask) @ wt
        gh = gh if ln is None else ln.forward(t, gh, 0, 3)
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

def rnn_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc, ln=None, relu: bool = False):
    T = dY.shape[0]
    dG = torch.empty_like(dY)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        d, straight = _unzone(d, _z(zh, t))
        h = saved[0][t] if zh is not None else hs[t + 1]
        da = d * (h > 0) if relu else d * (1 - h * h)
        dG[t] = da
        dh = _carry(_plus(_drop(_recurrent(da, ln, t, 0, 1) @ w_hh, h_mask), straight), keep)
    return dG, dG, dh, None


def lstm_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc, ln=None):
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
        if ln is None:
            c_hat = cs[t + 1] if zc is None else f * cs[t] + i * g
            tc = torch.tanh(c_hat)
            dct = dc_hat + dh_hat * o * (1 - tc * tc)              # dC^_t
        else:                                                       # h^_t = o tanh(LN(C^_t))
            tc, d_ln = ln.cell_backward(t, dh_hat, o)
            dct = dc_hat + d_ln
        lstm_gate_grads(dG[t], (i, f, g, o), dct, dh_hat, tc, cs[t])
        dc = _carry(_plus(dct * f, dc_straight), dc_keep)
        dh = _carry(_plus(_drop(_recurrent(dG[t], ln, t, 0, 4) @ w_hh, h_mask), dh_straight), dh_keep)
    return dG, dG, dh, dc


def gru_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc, ln=None):
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
        drh = _recurrent(dn, ln, t, 2, 3) @ w_n                     # d(r * h * m)
        torch.mul(drh * hd, r * (1 - r), out=dr)
        dhd = torch.addmm(drh * r, _recurrent(dG[t, :, :2 * H], ln, t, 0, 2), w_rz)  # d(h * m)
        dh = _carry(_plus(d * z + _drop(dhd, h_mask), straight), keep)
    return dG, dG, dh, None


def gru_reset_after_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, h_mask, zh, zc, ln=None):
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
        dh = _carry(_plus(d * z + _drop(_recurrent(dGh[t], ln, t, 0, 3) @ w_hh, h_mask), straight), keep)
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
    "rnn_tanh": (lambda *a, **k: rnn_forward(*a, **k, relu=False), lambda *a, **k: rnn_backward(*a, **k, relu=False)),
    "rnn_relu": (lambda *a, **k: rnn_forward(*a, **k, relu=True), lambda *a, **k: rnn_backward(*a, **k, relu=True)),
    "lstm": (lstm_forward, lstm_backward),
    "gru": (gru_forward, gru_backward),
    "gru_reset_after": (gru_reset_after_forward, gru_reset_after_backward),
}
