"""The gated recurrent unit, in the lecture's form (Cho et al. 2014) and PyTorch/cuDNN's."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase, linear


def gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None, reset_after: bool = False) -> Tensor:
    """One GRU step (equations in :class:`GRUCell`)."""
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
