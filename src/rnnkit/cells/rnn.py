"""The vanilla (Elman) RNN cell."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase, linear
from .extras import Regularisation, add_bias, layer_norm_blocks, zone

NONLINEARITIES = ("tanh", "relu")


def rnn_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None, nonlinearity: str = "tanh", *,
             reg: Regularisation | None = None) -> Tensor:
    """One step of the Elman RNN (equations in :class:`RNNCell`); ``reg``: the regularised form."""
    if reg is not None:
        hd = h if reg.h_mask is None else h * reg.h_mask                # h_{t-1} * m / (1-p)
        xu, hw = linear(x, weight_ih, None), linear(hd, weight_hh, None)
        if reg.ln is not None:
            xu = layer_norm_blocks(xu, reg.ln[0], reg.ln[1], 1)         # LN(x_t U)
            hw = layer_norm_blocks(hw, reg.ln[2], reg.ln[3], 1)         # LN(h_{t-1} W)
        a = add_bias(add_bias(xu + hw, bias_ih), bias_hh)
        new = torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)
        return zone(new, h, reg.zoneout_h)                              # h_t = z h_{t-1} + (1-z) f(a_t)
    a = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh)   # a_t = x_t U + h_{t-1} W + b
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)    # h_t = f(a_t)


class RNNCell(CellBase):
    """Elman RNN cell, the lecture's vanilla RNN.

    Equations (row vectors, ``h_0 = 0``)::

        a_t = x_t U + h_{t-1} W + b
        h_t = f(a_t)                    f = tanh (default) or relu

    With the layer's regularisers (each only when set; ``m`` the recurrent-dropout mask of the sequence,
    ``z_t`` the zoneout mask of step t, LN per :mod:`rnnkit.cells.extras`)::

        a_t = LN(x_t U) + LN((h_{t-1} * m) W) + b       recurrent_dropout, layer_norm
        h_t = z_t * h_{t-1} + (1 - z_t) * f(a_t)        zoneout (evaluation: z_t = p)

    Parameters: ``U = weight_ih.T`` (I, H), ``W = weight_hh.T`` (H, H), ``b = bias_ih + bias_hh``
    (two biases, as cuDNN and ``torch.nn.RNNCell`` keep them). ``cell(x_t, h) -> h_t``.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        self._check_input(x)
        if h is None:
            h = self.zero_state(x.shape[0], x)
        self._check_state(h, x)
        return rnn_step(x, h, *self.weights(), self.nonlinearity)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
