"""Layers users hold: recurrent layers with ``torch.nn``'s interface, and attention."""
from .attention import SCORES, AdditiveAttention, Attention, DotAttention, GeneralAttention, make_attention
from .recurrent import GRU, LSTM, RNN, RecurrentLayer

__all__ = ["RNN", "LSTM", "GRU", "RecurrentLayer", "Attention", "AdditiveAttention", "DotAttention",
           "GeneralAttention", "make_attention", "SCORES"]
