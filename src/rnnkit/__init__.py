"""rnnkit: recurrent neural networks from the lecture's equations, with hand-written BPTT, on PyTorch."""
import sys
from pathlib import Path

_INTERRUPTED_WHILE_STARTING = "rnnkit: interrupted while starting; nothing was done"

try:                                    # (importing the layers registers rnnkit's operators: .pt2 files need them)
    from .cells import GRUCell, LSTMCell, RNNCell
    from .layers import GRU, LSTM, RNN
    from .layers import MinGRU, MinLSTM
except KeyboardInterrupt:               # Ctrl-C while PyTorch loads, the first seconds of the `rnnkit` command
    _argv = getattr(sys, "orig_argv", [])       # (`python -m rnnkit`, as torchrun starts it, counts too)
    if Path(sys.argv[0]).name != "rnnkit" and ["-m", "rnnkit"] not in [_argv[i:i + 2] for i in range(len(_argv))]:
        raise                                   # a program that imports rnnkit gets its interrupt back
    print(_INTERRUPTED_WHILE_STARTING, file=sys.stderr)
    raise SystemExit(130) from None

__version__ = "0.1.0"
__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "RNNCell", "LSTMCell", "GRUCell", "__version__"]
