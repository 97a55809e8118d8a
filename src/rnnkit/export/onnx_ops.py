"""``rnnkit::recurrence`` in ONNX: one native ``RNN``/``LSTM``/``GRU`` operator per layer direction.

ONNX's recurrent operators are the same recurrences with other gate orders (LSTM ``i o f c`` for torch's
``i f g o``, GRU ``z r h`` for ``r z n``); ONNX's ``GRU`` with ``linear_before_reset=0`` is exactly the lecture's
(Cho et al.'s) GRU, with ``1`` PyTorch's. Lengths become ``sequence_lens``. ONNX zeroes the outputs past a
sequence's end and reports the last valid state as ``Y_h``; rnnkit's operator returns the state sequence with
``h_T`` last, so ``hs = [h_0, Y_1 .. Y_{T-1}, Y_h]`` (the layer zeroes outputs past each end itself).

What differs between the cells is one row of :data:`ONNX_KERNELS`, keyed by the engine's kernel name (as
``engine.bptt.KERNELS``): adding a cell that ONNX has is one row there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onnxscript import opset18 as op

from .errors import ProjectionNotSupported

__all__ = ["OnnxKernel", "ONNX_KERNELS", "recurrence_to_onnx", "translation_table"]


@dataclass(frozen=True)
class OnnxKernel:
    """How one engine kernel is written as an ONNX recurrent operator."""

    op: str                              # the ONNX operator: "RNN", "LSTM" or "GRU"
    gate_order: tuple[int, ...]          # torch's gate blocks (weight rows) in the order ONNX wants them
    attributes: dict[str, Any] = field(default_factory=dict)   # the operator's attributes besides hidden_size
    has_cell_state: bool = False         # the operator's third output Y_c is rnnkit's c_T

    @property
    def gates(self) -> int:
        return len(self.gate_order)


ONNX_KERNELS: dict[str, OnnxKernel] = {        # keyed by Recurrence.kernel
    "rnn_tanh": OnnxKernel("RNN", (0,), {"activations": ["Tanh"]}),
    "rnn_relu": OnnxKernel("RNN", (0,), {"activations": ["Relu"]}),
    "lstm": OnnxKernel("LSTM", (0, 3, 1, 2), has_cell_state=True),                    # i f g o -> i o f c
    "gru": OnnxKernel("GRU", (1, 0, 2), {"linear_before_reset": 0}),                   # r z n -> z r h
    "gru_reset_after": OnnxKernel("GRU", (1, 0, 2), {"linear_before_reset": 1}),
}


def _reorder(w, kernel: OnnxKernel, hidden: int):
    """torch's gate blocks (rows of ``hidden``) along axis 0 in ONNX's order: one Gather with constant indices,
    which the exporter's optimizer folds into the weights themselves."""
    if kernel.gates == 1:
        return w
    rows = [g * hidden + i for g in kernel.gate_order for i in range(hidden)]
    return op.Gather(w, op.Constant(value_ints=rows), axis=0)


def recurrence_to_onnx(backend, kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mask, window, store):
    """The ONNX translation of ``rnnkit::recurrence`` (inference: the backward's tensors come back empty)."""
    if w_hr is not None:
        raise ProjectionNotSupported()
    spec = ONNX_KERNELS[kernel]
    hidden = w_hh.shape[0] // spec.gates
    W = op.Unsqueeze(_reorder(w_ih, spec, hidden), [0])
    R = op.Unsqueeze(_reorder(w_hh, spec, hidden), [0])
    B = None if b_ih is None else op.Unsqueeze(
        op.Concat(_reorder(b_ih, spec, hidden), _reorder(b_hh, spec, hidden), axis=0), [0])
    lens = None if mask is None else \
        op.ReduceSum(op.Cast(op.Squeeze(mask, [2]), to=6), [0], keepdims=0)          # int32 (N,): the lengths
    h_init = op.Unsqueeze(h0, [0])
    empty = op.Slice(op.Reshape(x, [-1]), [0], [0], [0])                              # (0,), x's dtype
    run = getattr(op, spec.op)
    if spec.has_cell_state:
        Y, Y_h, Y_c = run(x, W, R, B, lens, h_init, op.Unsqueeze(c0, [0]), hidden_size=hidden, **spec.attributes)
        c_T = op.Squeeze(Y_c, [0])
    else:
        Y, Y_h = run(x, W, R, B, lens, h_init, hidden_size=hidden, **spec.attributes)
        c_T = empty
    Y = op.Squeeze(Y, [1])                                                            # (T, N, H): one direction
    hs = op.Concat(h_init, op.Slice(Y, [0], [-1], [0]), Y_h, axis=0)
    return hs, c_T, empty, empty, empty, empty


def translation_table() -> dict:
    """What ``torch.onnx.export(..., custom_translation_table=...)`` needs for rnnkit's layers."""
    import torch
    from ..engine import ops  # noqa: F401  (registers torch.ops.rnnkit.recurrence)
    return {torch.ops.rnnkit.recurrence.default: recurrence_to_onnx}
