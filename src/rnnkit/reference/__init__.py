"""The NumPy reference ("the oracle"): float64 forward and backward through time, written by hand.

It imports no torch, so it is an independent check of the torch engine and a teaching
implementation to read next to the lecture. One idea per module:

- :mod:`.rnn`   the Elman RNN (tanh or relu)      ``a_t = x_t U + h_{t-1} W + b, h_t = f(a_t)``
- :mod:`.lstm`  the LSTM (gates i, f, g, o)
- :mod:`.gru`   the GRU, the lecture's form and PyTorch's ``reset_after`` form (gates r, z, n)
- :mod:`.common` the gradients taken once after the backward loop, the sigmoid
- :mod:`.api`   ``forward`` / ``backward`` for any cell by name
- :mod:`.gradcheck` finite differences
- :mod:`.validate` shape checks against the torch.nn layout

Row vectors throughout, as in the lecture: ``U = weight_ih.T``, ``W = weight_hh.T``,
``b = bias_ih + bias_hh``, ``h_0 = 0`` unless given. Example::

    outputs, final_state, cache = forward("lstm", x, (h0, c0), params)
    grads = backward(cache, d_outputs, (d_hT, d_cT))
"""
from .api import Cache, State, backward, forward
from .gradcheck import check_gradients, numerical_gradient, relative_error
from .validate import CELLS, GATES

__all__ = ["CELLS", "GATES", "Cache", "State", "forward", "backward",
           "numerical_gradient", "check_gradients", "relative_error"]
