"""rnnkit: recurrent neural networks from the lecture's equations, with hand-written BPTT, on PyTorch."""
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN
from .layers import MinGRU, MinLSTM

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "RNNCell", "LSTMCell", "GRUCell", "__version__"]
