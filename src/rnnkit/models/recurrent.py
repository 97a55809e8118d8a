"""Build an rnnkit recurrent layer by cell name: the one place models turn ``"lstm"`` into a module."""
from __future__ import annotations

from ..layers import GRU, LSTM, RNN, RecurrentLayer

CELLS = ("lstm", "gru", "gru-torch", "rnn", "rnn-relu")


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                   bidirectional: bool = False, engine: str = "auto", forget_bias: float | None = None,
                   batch_first: bool = False) -> RecurrentLayer:
    """``lstm``; ``gru`` (the lecture's, Cho et al.); ``gru-torch`` (PyTorch/cuDNN's); ``rnn`` (tanh); ``rnn-relu``."""
    kw = dict(num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
              engine=engine, batch_first=batch_first)
    if cell == "lstm":
        return LSTM(input_size, hidden_size, forget_bias=forget_bias, **kw)
    if cell in ("gru", "gru-torch"):
        return GRU(input_size, hidden_size, reset_after=cell == "gru-torch", **kw)
    if cell in ("rnn", "rnn-relu"):
        return RNN(input_size, hidden_size, nonlinearity="relu" if cell == "rnn-relu" else "tanh", **kw)
    raise ValueError(f"unknown cell {cell!r}; expected one of {CELLS}")
