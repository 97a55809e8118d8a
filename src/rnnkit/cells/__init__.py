"""Cells: one time step of each recurrent network, written from the lecture's equations."""
from .base import CellBase
from .gru import GRUCell, gru_step
from .lstm import LSTMCell, lstm_step, set_forget_bias
from .rnn import RNNCell, rnn_step

__all__ = ["CellBase", "RNNCell", "LSTMCell", "GRUCell", "rnn_step", "lstm_step", "gru_step", "set_forget_bias"]
