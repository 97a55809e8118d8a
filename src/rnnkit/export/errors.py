"""The export's errors: one line each, saying what can't be exported and what to do instead."""
from __future__ import annotations

__all__ = ["ExportError", "OnnxNotSupported", "ProjectionNotSupported", "PROJECTION_MESSAGE", "REGULARISER_MESSAGE",
           "MINIMAL_MESSAGE", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'rnnkit[export]'"
PROJECTION_MESSAGE = ("ONNX's LSTM has no projection: an rnnkit LSTM with proj_size can't be exported to ONNX "
                      "(export it with --format pt2)")
REGULARISER_MESSAGE = ("ONNX's RNN, LSTM and GRU operators have no {options}, which change this model's numbers in "
                       "evaluation too: it can't be exported to ONNX (export it with --format pt2, which keeps them)")

MINIMAL_MESSAGE = ("ONNX has no operator for the parallel scan of MinGRU/MinLSTM over a sequence of any length: this "
                   "program can't be exported to ONNX (export it with --format pt2)")


class ExportError(ValueError):
    """An export that can't be done; the message says why in one line."""


class OnnxNotSupported(ExportError):
    """A model with a part that ONNX's recurrent operators lack; the message names it and says to use pt2."""


class ProjectionNotSupported(OnnxNotSupported):
    """An LSTM with ``proj_size`` asked for ONNX, whose LSTM has no projection."""

    def __init__(self, message: str = PROJECTION_MESSAGE) -> None:
        super().__init__(message)
