"""The long short-term memory cell."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase, linear
from .extras import Regularisation, add_bias, layer_norm_blocks, zone


def lstm_step(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None, bias_hh: Tensor | None, weight_hr: Tensor | None = None, *,
              reg: Regularisation | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step (equations in :class:`LSTMCell`); ``weight_hr`` (P, H) projects ``h`` (Sak et al. 2014);
    ``reg``: the regularised form."""
    h, c = state
    if reg is not None:
        hd = h if reg.h_mask is None else h * reg.h_mask                # h_{t-1} * m / (1-p)
        xu, hw = linear(x, weight_ih, None), linear(hd, weight_hh, None)
        if reg.ln is not None:
            xu = layer_norm_blocks(xu, reg.ln[0], reg.ln[1], 4)         # LN(x_t U), per gate block
            hw = layer_norm_blocks(hw, reg.ln[2], reg.ln[3], 4)         # LN(h_{t-1} W)
        a_i, a_f, a_g, a_o = add_bias(add_bias(xu + hw, bias_ih), bias_hh).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        c_new = f * c + i * g                                            # C^_t = f_t * C_{t-1} + i_t * C~_t
        cn = c_new if reg.ln is None else layer_norm_blocks(c_new, reg.ln[4], reg.ln[5], 1)
        h_new = o * torch.tanh(cn)                                       # h^_t = o_t * tanh(LN(C^_t))
        if weight_hr is not None:
            h_new = h_new @ weight_hr.t()
        return zone(h_new, h, reg.zoneout_h), zone(c_new, c, reg.zoneout_c)
    a = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh)   # a_t = x_t U + h_{t-1} W + b
    a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
    i = torch.sigmoid(a_i)                                               # i_t = σ(a_i)
    f = torch.sigmoid(a_f)                                               # f_t = σ(a_f)
    g = torch.tanh(a_g)                                                  # C~_t = tanh(a_g)
    o = torch.sigmoid(a_o)                                               # o_t = σ(a_o)
    c = f * c + i * g                                                    # C_t = f_t * C_{t-1} + i_t * C~_t
    h = o * torch.tanh(c)                                                # h_t = o_t * tanh(C_t)
    if weight_hr is not None:
        h = h @ weight_hr.t()                                            # h_t = (o_t * tanh(C_t)) R, R = weight_hr.T
    return h, c


class LSTMCell(CellBase):
    """LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    Equations (row vectors, ``h_0 = C_0 = 0``), gates stacked in PyTorch's order ``i, f, g, o``::

        [a_i a_f a_g a_o] = x_t U + h_{t-1} W + b
        i_t  = σ(a_i)            input gate
        f_t  = σ(a_f)            forget gate
        C~_t = tanh(a_g)         candidate
        o_t  = σ(a_o)            output gate
        C_t  = f_t * C_{t-1} + i_t * C~_t
        h_t  = o_t * tanh(C_t)

    ``U = weight_ih.T`` (I, 4H), ``W = weight_hh.T`` (H, 4H), ``b = bias_ih + bias_hh``; column block ``k`` of
    ``U`` and ``W`` belongs to gate ``k`` of ``i, f, g, o``. The lecture writes ``C_t = σ(f_t * C_{t-1} + i_t * C~_t)``;
    the LSTM everyone uses (cuDNN, ``torch.nn.LSTM``, Keras) has no σ there, and neither does this one.
    With a projection (the layer's ``proj_size``, Sak et al. 2014, as ``torch.nn.LSTM``) the state is projected
    to ``P < H`` units, ``h_t = (o_t * tanh(C_t)) R`` with ``R = weight_hr.T`` (H, P), and ``W`` is (P, 4H).
    With the layer's regularisers (each only when set; ``m`` the recurrent-dropout mask of the sequence,
    ``zh_t``, ``zc_t`` the zoneout masks of step t, LN per gate block as :mod:`rnnkit.cells.extras`)::

        [a_i a_f a_g a_o] = LN(x_t U) + LN((h_{t-1} * m) W) + b        recurrent_dropout, layer_norm
        C^_t = f_t * C_{t-1} + i_t * C~_t
        h^_t = o_t * tanh(LN(C^_t))                                     layer_norm, as haste's LayerNormLSTM
        C_t  = zc_t * C_{t-1} + (1 - zc_t) * C^_t                       zoneout (evaluation: z = p)
        h_t  = zh_t * h_{t-1} + (1 - zh_t) * h^_t                       (Krueger et al. 2016: h^ from C^)

    ``forget_bias`` (e.g. 1.0, Jozefowicz et al. 2015) sets ``bias_ih``'s forget block at initialisation
    (and zeroes ``bias_hh``'s). ``cell(x_t, (h, C)) -> (h_t, C_t)``.
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float | None = None,
                 device=None, dtype=None) -> None:
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None and self.bias:
            set_forget_bias(self.bias_ih, self.bias_hh, self.forget_bias)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        if state is None:
            zero = self.zero_state(x.shape[0], x)
            state = (zero, zero)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("LSTMCell: state must be a tuple (h, c)")
        self._check_state(state[0], x, "h")
        self._check_state(state[1], x, "c")
        return lstm_step(x, tuple(state), *self.weights())


@torch.no_grad()
def set_forget_bias(bias_ih: Tensor, bias_hh: Tensor, value: float, gates: int = 4, block: int = 1) -> None:
    """Make the forget gate's total bias ``value``: ``bias_ih``'s block ``block`` of ``gates`` set, ``bias_hh``'s
    zeroed (the LSTM's forget gate is the second of four)."""
    h = bias_ih.shape[0] // gates
    bias_ih[block * h:(block + 1) * h].fill_(value)
    bias_hh[block * h:(block + 1) * h].zero_()
