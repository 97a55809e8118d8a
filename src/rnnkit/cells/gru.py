"""The gated recurrent unit, in the lecture's form (Cho et al. 2014) and PyTorch/cuDNN's."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase, linear
from .extras import Regularisation, add_bias, layer_norm_blocks, zone


def gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None, reset_after: bool = False, *,
             reg: Regularisation | None = None) -> Tensor:
    """One GRU step (equations in :class:`GRUCell`); ``reg``: the regularised form."""
    if reg is not None:
        return _gru_regularised(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after, reg)
    xr, xz, xn = linear(x, weight_ih, bias_ih).chunk(3, dim=1)           # x_t U_r + b_ir, x_t U_z + b_iz, x_t U_n + b_in
    w_rz, w_n = weight_hh.split([2 * h.shape[1], h.shape[1]], dim=0)
    b_rz, b_n = (None, None) if bias_hh is None else bias_hh.split([2 * h.shape[1], h.shape[1]])
    hr, hz = linear(h, w_rz, b_rz).chunk(2, dim=1)                       # h_{t-1} W_r + b_hr, h_{t-1} W_z + b_hz
    r = torch.sigmoid(xr + hr)                                           # r_t = σ(x_t U_r + h_{t-1} W_r + b_r)
    z = torch.sigmoid(xz + hz)                                           # z_t = σ(x_t U_z + h_{t-1} W_z + b_z)
    if reset_after:
        n = torch.tanh(xn + r * linear(h, w_n, b_n))                     # n_t = tanh(x_t U_n + b_in + r_t * (h_{t-1} W_n + b_hn))
    else:
        n = torch.tanh(xn + linear(r * h, w_n, b_n))                     # h~_t = tanh(x_t U_n + (r_t * h_{t-1}) W_n + b_n)
    return (1 - z) * n + z * h                                           # h_t = (1 - z_t) * h~_t + z_t * h_{t-1}


def _gru_regularised(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after: bool, reg: Regularisation):
    H = h.shape[1]
    ln = reg.ln
    hd = h if reg.h_mask is None else h * reg.h_mask                     # h_{t-1} * m / (1-p)
    xu = linear(x, weight_ih, None)
    if ln is not None:
        xu = layer_norm_blocks(xu, ln[0], ln[1], 3)                      # LN(x_t U), per gate block
    xr, xz, xn = add_bias(xu, bias_ih).chunk(3, dim=1)
    b_rz, b_n = (None, None) if bias_hh is None else bias_hh.split([2 * H, H])
    if reset_after:
        hw = linear(hd, weight_hh, None)
        if ln is not None:
            hw = layer_norm_blocks(hw, ln[2], ln[3], 3)                  # LN(h_{t-1} W)
        hw = add_bias(hw, bias_hh)
        r = torch.sigmoid(xr + hw[:, :H])
        z = torch.sigmoid(xz + hw[:, H:2 * H])
        n = torch.tanh(xn + r * hw[:, 2 * H:])                           # n_t = tanh(.. + r_t * (LN(h W_n) + b_hn))
    else:
        w_rz, w_n = weight_hh.split([2 * H, H], dim=0)
        hw = linear(hd, w_rz, None)
        if ln is not None:
            hw = layer_norm_blocks(hw, ln[2][:2 * H], ln[3][:2 * H], 2)
        hr, hz = add_bias(hw, b_rz).chunk(2, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        q = linear(r * hd, w_n, None)                                    # (r_t * h_{t-1} * m) W_n
        if ln is not None:
            q = layer_norm_blocks(q, ln[2][2 * H:], ln[3][2 * H:], 1)
        n = torch.tanh(xn + add_bias(q, b_n))
    new = (1 - z) * n + z * h                                            # z_t h_{t-1}: the undropped state
    return zone(new, h, reg.zoneout_h)                                   # h_t = zo h_{t-1} + (1-zo) h^_t


class GRUCell(CellBase):
    """GRU cell. The default is the lecture's GRU (Cho et al. 2014), ``reset_after=True`` is PyTorch/cuDNN's.

    Equations (row vectors, ``h_0 = 0``), gates stacked in PyTorch's order ``r, z, n``::

        r_t  = σ(x_t U_r + h_{t-1} W_r + b_r)                reset gate
        z_t  = σ(x_t U_z + h_{t-1} W_z + b_z)                update gate (PyTorch's z, see below)
        h~_t = tanh(x_t U_n + (r_t * h_{t-1}) W_n + b_n)     lecture / Cho et al.: reset BEFORE the matmul
        h~_t = tanh(x_t U_n + b_in + r_t * (h_{t-1} W_n + b_hn))   reset_after=True: PyTorch / cuDNN
        h_t  = (1 - z_t) * h~_t + z_t * h_{t-1}

    ``U = weight_ih.T`` (I, 3H) with column blocks ``U_r, U_z, U_n``; ``W = weight_hh.T`` (H, 3H) likewise;
    each ``b = b_i + b_h`` (in the reset-before form ``b_hn`` sits inside the matmul's bias).
    The lecture writes ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``: its ``z`` is ``1 - z`` here. We keep PyTorch's
    ``z`` so that weights move between rnnkit and ``torch.nn.GRU`` unchanged; with ``reset_after=True`` the
    cell computes exactly ``torch.nn.GRUCell``. ``cell(x_t, h) -> h_t``.

    With the layer's regularisers (each only when set; ``m`` the recurrent-dropout mask of the sequence, ``zo_t``
    the zoneout mask of step t, LN per gate block as :mod:`rnnkit.cells.extras`)::

        [r_t z_t] = σ(LN(x_t U)_rz + LN((h_{t-1} * m) W_rz) + b_rz)
        h~_t = tanh(LN(x_t U)_n + LN((r_t * h_{t-1} * m) W_n) + b_n)              reset before the matmul
        h~_t = tanh(LN(x_t U)_n + b_in + r_t * (LN((h_{t-1} * m) W)_n + b_hn))    reset_after=True
        h^_t = (1 - z_t) * h~_t + z_t * h_{t-1}
        h_t  = zo_t * h_{t-1} + (1 - zo_t) * h^_t                                 zoneout (evaluation: zo_t = p)
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, reset_after: bool = False,
                 device=None, dtype=None) -> None:
        self.reset_after = reset_after
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check_input(x)
        if h is None:
            h = self.zero_state(x.shape[0], x)
        self._check_state(h, x)
        return gru_step(x, h, *self.weights(), self.reset_after)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"
