"""The compiled engine: the whole time loop, forward and backward, in C++ (``csrc/``), same contract as ``bptt``.
(This is ``engine="compiled"``; on a GPU, ``engine="cuda-graph"`` runs :mod:`rnnkit.engine.graphed`.)

Python pays ~9 µs per operation per step; this loop pays none: each step is the recurrent matmul(s) (float32: on
Intel CPUs MKL's packed GEMM with the weight packed once per sequence; elsewhere a small-batch kernel up to 32 rows,
oneDNN for big products, MKL's packed GEMM between; ATen for float64; ``csrc/gemm.h``) and one fused, vectorized
pass over the gates (``csrc/cells_*.cpp``), recurrent dropout,
zoneout and layer norm included. The input projection and the
weight gradients are one matmul each per window of steps. It saves exactly what :mod:`rnnkit.engine.bptt` saves
(the LSTM ``6·N·H·T`` floats) and, with ``checkpoint_every=k``, only the states plus the LSTM cell every ``k``
steps, recomputing each window's gates in the backward. The backward never writes the saved tensors, so
``retain_graph`` and ``gradcheck`` work. It runs as the custom operator ``rnnkit::recurrence`` (:mod:`.ops`);
:mod:`.build` builds and loads the extension.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells.spec import Recurrence
from .build import BUILD_FAILED, build, extension, state  # noqa: F401  (build: `rnnkit build`)
from .ops import run_op

_DTYPES = (torch.float32, torch.float64)
_KERNELS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_after")     # csrc/fused.h's Mode
_INFERENCE_ROWS = 2048              # rows (steps x N) per window when no backward will run


def unavailable_reason(cell: Recurrence, x: Tensor) -> str | None:
    """Why the compiled loop can't run ``cell`` on ``x``, or ``None`` when it can (may build on first use)."""
    if cell.kernel not in _KERNELS:
        return f"the compiled loop has no kernel for {cell.description}"
    if x.device.type != "cpu":
        return f"the compiled loop runs on the CPU only, not on {x.device.type}"
    if x.dtype not in _DTYPES:
        return f"the compiled engine has no {x.dtype} kernels (float32 and float64 only)"
    if not _built():
        return f"{BUILD_FAILED}: {state['error']}"
    return None


@torch.compiler.assume_constant_result
def _built() -> bool:
    """Whether the extension is loaded, building it on first use. A constant to ``torch.compile``, which runs this
    while it traces: the build's lock can't be traced, so a first call compiled with ``fullgraph=True`` failed."""
    return extension() is not None


def warn_on_fallback(reason: str) -> bool:
    """``auto`` warns (once) when the build failed, not for inputs the engine never serves (dtype, device)."""
    return reason.startswith(BUILD_FAILED)


def run_fused(cell: Recurrence, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple, mask: Tensor | None,
              checkpoint_every: int | None = None, reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``cell`` over ``x`` in the compiled loop; same arguments and results as ``bptt.run_bptt`` (``reg``:
    recurrent-dropout and zoneout masks, :class:`rnnkit.cells.extras.Regularisation`).

    ``checkpoint_every=k`` keeps only the states (and the LSTM cell every ``k`` steps) and recomputes each
    window of ``k`` steps in the backward: memory ``~N·H·T`` instead of ``6·N·H·T`` for about a third more time.
    Without autograd nothing is saved and the loop runs through window-sized buffers.
    """
    c0 = c0 if cell.has_cell_state else None
    x = x.contiguous()
    mask = None if mask is None else mask.contiguous()
    tracing = torch.jit.is_tracing()               # one graph for jit.trace, whatever the grad mode of its checks
    learned = (x, h0, c0, *weights, *(() if reg is None or reg.ln is None else reg.ln))
    if tracing or torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in learned):
        return run_op("compiled", cell, x, h0, c0, weights, mask, checkpoint_every or 0, checkpoint_every is None,
                      reg=reg)
    window = max(1, _INFERENCE_ROWS // max(1, x.shape[1]))
    return run_op("compiled", cell, x, h0, c0, weights, mask, window, False, reg=reg)


def make_stepper(cell: Recurrence, layer_weights: list[list[Tensor | None]], batch: int):
    """The compiled generation step for a stack: ``.step(x (N, I), h (L, N, H), c or None) -> [h', c']``.

    ``layer_weights`` holds each layer's ``[w_ih, w_hh, b_ih, b_hh]``; their packed copies are made here, so the
    stepper serves these weights as they are now (see :mod:`rnnkit.layers.stepping`).
    """
    weights = [[None if w is None else w.detach() for w in ws] for ws in layer_weights]
    return extension().Stepper(cell.kernel, weights, batch)
