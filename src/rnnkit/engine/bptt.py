"""Backpropagation through time written by hand: the Python loops, and the engine's contract.

Contract of :func:`forward_pass` / :func:`backward_pass`, which :mod:`.ops` registers as ``rnnkit::recurrence``
-------------------------------------------------------------------------
Arguments, ``T`` steps, ``N`` sequences, ``I`` input features, ``H`` hidden units, ``G`` gate blocks
(1 RNN, 4 LSTM, 3 GRU):

=============  =============  ==========================================================================
``x``          (T, N, I)      input, time-major, contiguous or not
``h0``         (N, H)         initial state (``h_0``); ``c0`` (N, H) for the LSTM, else ``None``
``weight_ih``  (G*H, I)       the lecture's ``U`` transposed; ``weight_hh`` (G*H, H) is ``W`` transposed
``bias_*``     (G*H,)         or ``None`` for ``bias=False``
``mask``       (T, N, 1) bool ``True`` where step ``t`` of sequence ``n`` is valid, or ``None``; past a
                              sequence's end its state is held, so ``h_T`` is its state at its last valid step
=============  =============  ==========================================================================

Returns ``h_seq`` (T, N, H) = ``h_1..h_T`` (a view into the saved ``(T+1, N, H)`` state buffer), ``h_T`` (N, H)
and, for the LSTM, ``C_T`` (N, H). Callers zero outputs past a sequence's end themselves (``h_seq * mask``).

What the forward pass saves for the backward, and nothing else:
  ``x``; the states ``h_0..h_T`` (T+1, N, H); the activated gates (T, N, G*H); for the LSTM the cells
  ``C_0..C_T`` (T+1, N, H); for the PyTorch GRU the recurrent candidate term ``h W_n + b_hn`` (T, N, H);
  the weights. The LSTM thus keeps ``6·N·H·T`` floats, the minimum BPTT needs.
Aliasing: the gate buffer is written in place step by step (pre-activation, then activation); ``h_seq`` and
the saved states share storage; no argument is written to.
The input projection ``X U + b`` is one matmul before the loop (``b_hh`` is folded into it wherever it is
additive); after the backward loop the weight gradients ``dU = X^T dG``, ``dW = H_{prev}^T dG`` and
``dX = dG U^T`` are one matmul each. Only ``h W`` (forward) and ``dG W^T`` (backward) stay in the loop.
Backward needs the forward to have run under autograd (a tensor requiring grad); it is first-order only.
Truncated BPTT: the state passed in is a leaf; the caller detaches between windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import Tensor

from ..cells.spec import Recurrence
from .loop_steps import carry as _carry, lstm_gate_grads, settle as _settle, split as _split, target as _target
from .masked import LOOPS as MASKED_LOOPS, Norm, normalise, normalise_backward, recurrent_weight_grad

# --------------------------------------------------------------------------- forward loops
# Each takes the projected input xp (T, N, G*H) with the foldable biases in it, writes the states into hs
# (T+1, N, H) (and cs), and returns what its backward needs.


def _rnn_forward(xp, hs, cs, w_hh, b_hn, mask, relu: bool):
    wt = w_hh.t()
    for t in range(xp.shape[0]):
        m = None if mask is None else mask[t]
        a = torch.addmm(xp[t], hs[t], wt, out=_target(hs[t + 1], m))  # a_t = x_t U + b + h_{t-1} W
        a = a.relu_() if relu else a.tanh_()              # h_t = f(a_t)
        _settle(hs[t + 1], a, hs[t], m)
    return ()


def _lstm_forward(xp, hs, cs, w_hh, b_hn, mask, w_hr=None):
    T, N, GH = xp.shape
    H = GH // 4
    gates = torch.empty_like(xp)
    wt = w_hh.t()
    cell_out = None if w_hr is None else xp.new_empty(T, N, H)   # o_t * tanh(C_t) before the projection
    for t in range(T):
        a = torch.addmm(xp[t], hs[t], wt, out=gates[t])  # [a_i a_f a_g a_o] = x_t U + b + h_{t-1} W
        a[:, :2 * H].sigmoid_()                           # i_t, f_t = σ(a_i), σ(a_f)
        a[:, 2 * H:3 * H].tanh_()                         # C~_t = tanh(a_g)
        a[:, 3 * H:].sigmoid_()                           # o_t = σ(a_o)
        i, f, g, o = a.chunk(4, 1)
        m = None if mask is None else mask[t]
        c = torch.addcmul(f * cs[t], i, g, out=_target(cs[t + 1], m))  # C_t = f_t * C_{t-1} + i_t * C~_t
        if w_hr is None:
            h = torch.mul(o, torch.tanh(c), out=_target(hs[t + 1], m))  # h_t = o_t * tanh(C_t)
        else:
            hc = torch.mul(o, torch.tanh(c), out=cell_out[t])
            h = torch.mm(hc, w_hr.t(), out=_target(hs[t + 1], m))      # h_t = (o_t * tanh(C_t)) R
        _settle(cs[t + 1], c, cs[t], m)
        _settle(hs[t + 1], h, hs[t], m)
    return (gates,) if w_hr is None else (gates, cell_out)


def _gru_forward(xp, hs, cs, w_hh, b_hn, mask):
    """Cho et al.'s GRU: the reset gate multiplies ``h`` before the recurrent matmul."""
    T, _, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    w_rz, w_n = w_hh[:2 * H].t(), w_hh[2 * H:].t()
    for t in range(T):
        h = hs[t]
        rz = torch.addmm(xp[t, :, :2 * H], h, w_rz, out=gates[t, :, :2 * H]).sigmoid_()  # r_t, z_t
        r, z = rz.chunk(2, 1)
        n = torch.addmm(xp[t, :, 2 * H:], r * h, w_n, out=gates[t, :, 2 * H:]).tanh_()  # h~_t = tanh(x U_n + (r*h) W_n + b)
        m = None if mask is None else mask[t]
        new = torch.lerp(n, h, z, out=_target(hs[t + 1], m))  # h_t = (1 - z_t) * h~_t + z_t * h_{t-1}
        _settle(hs[t + 1], new, h, m)
    return (gates,)


def _gru_reset_after_forward(xp, hs, cs, w_hh, b_hn, mask):
    """PyTorch/cuDNN's GRU: the reset gate multiplies ``h W_n + b_hn`` after the matmul."""
    T, N, GH = xp.shape
    H = GH // 3
    gates = torch.empty_like(xp)
    hw_n = xp.new_empty(T, N, H)                           # h_{t-1} W_n + b_hn, needed by the backward
    wt = w_hh.t()
    for t in range(T):
        h = hs[t]
        gh = h @ wt                                       # h_{t-1} W for all three blocks
        rz = torch.add(xp[t, :, :2 * H], gh[:, :2 * H], out=gates[t, :, :2 * H]).sigmoid_()
        r, z = rz.chunk(2, 1)
        ghn = gh[:, 2 * H:] if b_hn is None else gh[:, 2 * H:] + b_hn
        hw_n[t] = ghn
        n = torch.addcmul(xp[t, :, 2 * H:], r, ghn, out=gates[t, :, 2 * H:]).tanh_()  # n = tanh(x U_n + b_in + r*(h W_n + b_hn))
        m = None if mask is None else mask[t]
        new = torch.lerp(n, h, z, out=_target(hs[t + 1], m))  # h_t = (1 - z_t) * n_t + z_t * h_{t-1}
        _settle(hs[t + 1], new, h, m)
    return (gates, hw_n)


# --------------------------------------------------------------------------- backward loops
# Each walks t = T-1..0 with the carried gradient dh (and dc), writes the gate gradients dG (T, N, G*H)
# with respect to the pre-activations, and returns (dG for the input projection, dG for W, dh0, dc0).


def _rnn_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, relu: bool):
    T = dY.shape[0]
    dG = torch.empty_like(dY)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        h = hs[t + 1]
        da = d * (h > 0) if relu else d * (1 - h * h)     # da_t = dh_t * f'(a_t)
        dG[t] = da
        dh = _carry(da @ w_hh, keep)                      # dh_{t-1} = da_t W^T
    return dG, dG, dh, None


def _lstm_backward(dY, dh, dc, hs, cs, saved, w_hh, mask, w_hr=None, d_proj=None):
    """``w_hr``: the projection; then ``d_proj`` (T, N, P) receives dL/dh_t for ``dR = (o*tanh C)^T dh``."""
    gates = saved[0]
    T = dY.shape[0]
    dG = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        m = None if mask is None else mask[t]
        dh_new, dh_keep = _split(dh + dY[t], m)
        dc_new, dc_keep = _split(dc, m)
        if w_hr is not None:
            d_proj[t] = dh_new
            dh_new = dh_new @ w_hr                          # d(o_t * tanh(C_t)) = dh_t R^T
        i, f, g, o = gates[t].chunk(4, 1)
        tc = torch.tanh(cs[t + 1])
        dct = dc_new + dh_new * o * (1 - tc * tc)        # dC_t, through h_t = o_t tanh(C_t) and from C_{t+1}
        lstm_gate_grads(dG[t], (i, f, g, o), dct, dh_new, tc, cs[t])
        dc = _carry(dct * f, dc_keep)                     # dC_{t-1} = dC_t f_t
        dh = _carry(dG[t] @ w_hh, dh_keep)                # dh_{t-1} = dG_t W^T
    return dG, dG, dh, dc


def _gru_backward(dY, dh, dc, hs, cs, saved, w_hh, mask):
    (gates,) = saved
    T, _, GH = gates.shape
    H = GH // 3
    w_rz, w_n = w_hh[:2 * H], w_hh[2 * H:]
    dG = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        h = hs[t]
        r, z, n = gates[t].chunk(3, 1)
        dr, dz, dn = dG[t].chunk(3, 1)
        torch.mul(d * (1 - z), 1 - n * n, out=dn)        # da_n = dh_t (1 - z_t) tanh'
        torch.mul(d * (h - n), z * (1 - z), out=dz)      # da_z = dh_t (h_{t-1} - h~_t) σ'
        drh = dn @ w_n                                    # d(r_t * h_{t-1}) = da_n W_n^T
        torch.mul(drh * h, r * (1 - r), out=dr)          # da_r = d(r h) h_{t-1} σ'
        dh = _carry(torch.addmm(d * z + drh * r, dG[t, :, :2 * H], w_rz), keep)  # dh_{t-1}
    return dG, dG, dh, None


def _gru_reset_after_backward(dY, dh, dc, hs, cs, saved, w_hh, mask):
    gates, hw_n = saved
    T, _, GH = gates.shape
    H = GH // 3
    dGx = torch.empty_like(gates)
    dGh = torch.empty_like(gates)
    for t in range(T - 1, -1, -1):
        d, keep = _split(dh + dY[t], None if mask is None else mask[t])
        h = hs[t]
        r, z, n = gates[t].chunk(3, 1)
        dr, dz, dn = dGx[t].chunk(3, 1)
        torch.mul(d * (1 - z), 1 - n * n, out=dn)        # da_n = dh_t (1 - z_t) tanh'
        torch.mul(d * (h - n), z * (1 - z), out=dz)      # da_z
        torch.mul(dn * hw_n[t], r * (1 - r), out=dr)       # da_r = da_n (h W_n + b_hn) σ'
        dGh[t, :, :2 * H] = dGx[t, :, :2 * H]
        torch.mul(dn, r, out=dGh[t, :, 2 * H:])          # d(h W_n + b_hn) = da_n r_t
        dh = _carry(torch.addmm(d * z, dGh[t], w_hh), keep)  # dh_{t-1} = dh_t z_t + dG^h_t W^T
    return dGx, dGh, dh, None


@dataclass(frozen=True)
class Kernel:
    """One recurrence's Python loops and the two facts about it the shared code needs."""

    forward: Callable
    backward: Callable
    bias_in_loop: bool = False         # b_hn stays inside the loop (PyTorch's GRU: r * (h W_n + b_hn))
    reset_before_matmul: bool = False  # W_n multiplies r * h, not h (Cho's GRU), also in dW


KERNELS: dict[str, Kernel] = {       # keyed by Recurrence.kernel
    "rnn_tanh": Kernel(partial(_rnn_forward, relu=False), partial(_rnn_backward, relu=False)),
    "rnn_relu": Kernel(partial(_rnn_forward, relu=True), partial(_rnn_backward, relu=True)),
    "lstm": Kernel(_lstm_forward, _lstm_backward),
    "gru": Kernel(_gru_forward, _gru_backward, reset_before_matmul=True),
    "gru_reset_after": Kernel(_gru_reset_after_forward, _gru_reset_after_backward, bias_in_loop=True),
}


def _folded_bias(kernel: Kernel, b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """The bias added once to ``X U`` and, for the PyTorch GRU, the ``b_hn`` that must stay in the loop."""
    if b_ih is None:
        return None, None
    if kernel.bias_in_loop:
        H = b_hh.shape[0] // 3
        return b_ih + torch.cat([b_hh[:2 * H], b_hh.new_zeros(H)]), b_hh[2 * H:]
    return b_ih + b_hh, None


def forward_pass(cell: Recurrence, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                 b_ih: Tensor | None, b_hh: Tensor | None, mask: Tensor | None, w_hr: Tensor | None = None,
                 h_mask: Tensor | None = None, zh: Tensor | None = None, zc: Tensor | None = None,
                 ln: tuple | None = None) -> tuple:
    """The forward over all steps: ``(hs (T+1, N, H), cs (T+1, N, H) or None, *saved)`` (see the contract).
    With the LSTM's projection ``w_hr`` (P, H) the states ``hs`` are (T+1, N, P) and ``saved`` ends with the
    unprojected ``o_t * tanh(C_t)`` (T, N, H). ``h_mask``, ``zh``, ``zc``: recurrent dropout and zoneout; ``ln``:
    layer norm's six gains and biases (``Regularisation.ln``), then ``saved`` ends with its ``norm`` and ``rstd``;
    all run by :mod:`.masked`'s loops (not with a projection)."""
    T, N, I = x.shape
    H = w_hh.shape[1]                                  # the state's size (P with a projection)
    kernel = KERNELS[cell.kernel]
    bias, b_hn = _folded_bias(kernel, b_ih, b_hh)
    x2 = x.reshape(T * N, I)
    norm = None
    if ln is not None:                                 # LN(x U) + b, once for all steps
        G, GH = cell.gates, w_hh.shape[0]
        xh, rs = normalise(x2 @ w_ih.t(), G)
        norm = x.new_empty(T, N, 2 * GH + (GH // G if cell.has_cell_state else 0))
        rstd = x.new_empty(T, N, 2 * G + cell.has_cell_state)
        norm[:, :, :GH], rstd[:, :, :G] = xh.view(T, N, GH), rs.view(T, N, G)
        xp = (xh * ln[0] + (ln[1] if bias is None else ln[1] + bias)).view(T, N, -1)
    else:
        xp = (torch.addmm(bias, x2, w_ih.t()) if bias is not None else x2 @ w_ih.t()).view(T, N, -1)
    hs = x.new_empty(T + 1, N, H)
    hs[0] = h0
    cs = None
    if cell.has_cell_state:
        cs = x.new_empty(T + 1, N, c0.shape[1])
        cs[0] = c0
    if norm is not None:
        saved = MASKED_LOOPS[cell.kernel][0](xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc,
                                             ln=Norm(*ln[2:], norm, rstd))
        return (hs, cs, *saved, norm, rstd)
    if h_mask is not None or zh is not None or zc is not None:
        return (hs, cs, *MASKED_LOOPS[cell.kernel][0](xp, hs, cs, w_hh, b_hn, mask, h_mask, zh, zc))
    projection = {} if w_hr is None else {"w_hr": w_hr}
    saved = kernel.forward(xp, hs, cs, w_hh, b_hn, mask, **projection)
    return (hs, cs, *saved)


def backward_pass(cell: Recurrence, x: Tensor, hs: Tensor, cs: Tensor | None, saved: tuple, w_ih: Tensor, w_hh: Tensor,
                  mask: Tensor | None, dY: Tensor, dc_T: Tensor | None, has_bias: bool, need_dx: bool,
                  w_hr: Tensor | None = None, h_mask: Tensor | None = None, zh: Tensor | None = None,
                  zc: Tensor | None = None, ln: tuple | None = None) -> tuple:
    """The backward through time: ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)``, ``None`` where not asked for,
    and ``dw_hr`` eighth with the LSTM's projection; with the masks of :mod:`.masked`, its loops. ``ln``: layer
    norm's ``(norm, rstd, *gains and biases)``; then ``dw_hr`` (``None``) and their six gradients follow."""
    T, N, I = x.shape
    H = hs.shape[2]
    dc = dc_T if cell.has_cell_state else None
    kernel = KERNELS[cell.kernel]
    projection = {} if w_hr is None else {"w_hr": w_hr, "d_proj": dY.new_empty(T, N, H)}
    masked = h_mask is not None or zh is not None or zc is not None or ln is not None
    normed = None
    if ln is not None:
        norm, rstd, g_ih, _, *hh_and_c = ln
        normed = Norm(*hh_and_c, norm, rstd, dA=dY.new_empty(T, N, w_hh.shape[0]),
                      dlnc=dY.new_empty(T, N, H) if cell.has_cell_state else None)
    if masked:
        dGx, dGh, dh0, dc0 = MASKED_LOOPS[cell.kernel][1](dY, hs.new_zeros(N, H), dc, hs, cs, saved, w_hh, mask,
                                                   h_mask, zh, zc, **({} if normed is None else {"ln": normed}))
    else:
        dGx, dGh, dh0, dc0 = kernel.backward(dY, hs.new_zeros(N, H), dc, hs, cs, saved, w_hh, mask, **projection)
    gx = dGx.reshape(T * N, -1)
    gh = dGh.reshape(T * N, -1)
    gu, gw = gx, gh                           # what U and W take: the raw products' gradients (through LN if any)
    if normed is not None:
        d_ln, gu, gw = _layer_norm_grads(cell, gx, gh, normed, g_ih)
    dx = (gu @ w_ih).view(T, N, I) if need_dx else None
    dw_ih = gu.t() @ x.reshape(T * N, I)                                  # dU^T = dG^T X
    dw_hh = recurrent_weight_grad(kernel.reset_before_matmul, gw, hs, saved, h_mask) if masked \
        else _recurrent_weight_grad(kernel, gw, hs, saved)                  # dW^T = dG^T H_prev
    db_ih = db_hh = None
    if has_bias:
        db_ih = gx.sum(0)
        db_hh = gh.sum(0)
    if normed is not None:
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, None, *d_ln
    if w_hr is None:
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh
    cell_out = saved[-1]                                                  # dR^T = dH^T (o * tanh C)
    dw_hr = projection["d_proj"].reshape(T * N, H).t() @ cell_out.reshape(T * N, -1)
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr


def _layer_norm_grads(cell: Recurrence, gx: Tensor, gh: Tensor, ln: Norm, g_ih: Tensor) -> tuple:
    """``(layer norm's six gradients, d(x U), d(h W))`` from the gate gradients ``gx`` and the recurrent product's
    LN output gradients ``gh`` (rows, G*H): the gains take ``sum(dy * normalised)``, the biases ``sum(dy)``."""
    G, GH = cell.gates, gx.shape[1]
    norm, rstd = ln.norm.reshape(gx.shape[0], -1), ln.rstd.reshape(gx.shape[0], -1)
    d_ln = [(gx * norm[:, :GH]).sum(0), gx.sum(0), (gh * norm[:, GH:2 * GH]).sum(0), gh.sum(0), None, None]
    if cell.has_cell_state:
        dl = ln.dlnc.reshape(gx.shape[0], -1)
        d_ln[4:] = [(dl * norm[:, 2 * GH:]).sum(0), dl.sum(0)]
    gu = normalise_backward(gx, norm[:, :GH], rstd[:, :G], g_ih, G)
    return d_ln, gu, ln.dA.reshape(gx.shape[0], GH)


def _recurrent_weight_grad(kernel: Kernel, gh: Tensor, hs: Tensor, saved: tuple) -> Tensor:
    """``dG^T H_prev`` over all steps in one matmul; Cho's GRU multiplies ``W_n`` by ``r*h`` instead of ``h``."""
    T1, N, H = hs.shape
    h_prev = hs[:-1].reshape(-1, H)
    if not kernel.reset_before_matmul:
        return gh.t() @ h_prev
    r = saved[0][:, :, :H].reshape(-1, H)
    return torch.cat([gh[:, :2 * H].t() @ h_prev, gh[:, 2 * H:].t() @ (r * h_prev)])
