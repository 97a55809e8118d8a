"""Layers users hold: recurrent layers with ``torch.nn``'s interface, and attention."""
from .attention import SCORES, AdditiveAttention, Attention, DotAttention, GeneralAttention, make_attention
from .recurrent import GRU, LSTM, RNN, RecurrentLayer, make_layer
from .minimal import MinGRU, MinLSTM, MinimalLayer

__all__ = ["RNN", "LSTM", "GRU", "RecurrentLayer", "make_layer", "MinGRU", "MinLSTM", "MinimalLayer", "Attention",
           "AdditiveAttention", "DotAttention", "GeneralAttention", "make_attention", "SCORES"]
