"""rnnkit: recurrent neural networks from the lecture's equations, with hand-written BPTT, on PyTorch.

The public classes load on first use (``rnnkit.LSTM``, ``from rnnkit import GRU``), so that importing the
package alone does not import PyTorch: the ``rnnkit`` command can then answer Ctrl-C during its first seconds
(PyTorch loading) in one line (:mod:`rnnkit.cli.entry`).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOME = {"RNNCell": "cells", "LSTMCell": "cells", "GRUCell": "cells",
         "RNN": "layers", "LSTM": "layers", "GRU": "layers", "MinGRU": "layers", "MinLSTM": "layers"}
__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "RNNCell", "LSTMCell", "GRUCell", "__version__"]

if TYPE_CHECKING:                                  # what the names are, for readers and type checkers
    from .cells import GRUCell, LSTMCell, RNNCell
    from .layers import GRU, LSTM, RNN, MinGRU, MinLSTM


def __getattr__(name: str) -> Any:
    """A public class (imported from its module once), or a subpackage (``rnnkit.engine``)."""
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":        # the subpackage exists but something it imports doesn't
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
