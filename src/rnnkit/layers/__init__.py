"""Layers users hold: stacked, bidirectional recurrent layers with ``torch.nn``'s interface."""
from .recurrent import GRU, LSTM, RNN, RecurrentLayer

__all__ = ["RNN", "LSTM", "GRU", "RecurrentLayer"]
