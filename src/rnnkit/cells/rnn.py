"""The vanilla (Elman) RNN cell."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase, linear

NONLINEARITIES = ("tanh", "relu")


def rnn_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None, bias_hh: Tensor | None, nonlinearity: str = "tanh") -> Tensor:
    """One step of the Elman RNN (equations in :class:`RNNCell`)."""
    a = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh)   # a_t = x_t U + h_{t-1} W + b
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)    # h_t = f(a_t)


class RNNCell(CellBase):
    """Elman RNN cell, the lecture's vanilla RNN.

    Equations (row vectors, ``h_0 = 0``)::

        a_t = x_t U + h_{t-1} W + b
        h_t = f(a_t)                    f = tanh (default) or relu

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
