"""Cells: one time step of each recurrent network, written from the lecture's equations, and the one description
of each recurrence (:mod:`.spec`) that the rest of rnnkit asks."""
from .base import CellBase
from .gru import GRUCell, gru_step
from .lstm import LSTMCell, lstm_step, set_forget_bias
from .rnn import RNNCell, rnn_step
from .spec import CELL_NAMES, RECURRENCES, Recurrence, recurrence

__all__ = ["CellBase", "RNNCell", "LSTMCell", "GRUCell", "rnn_step", "lstm_step", "gru_step", "set_forget_bias",
           "Recurrence", "RECURRENCES", "CELL_NAMES", "recurrence"]
