"""One step of every layer of a stack at once: how generation and beam search advance a model by one token.

:func:`step_stack` takes a layer's input at one time step (N, I) and its state, and returns the last layer's
output (N, H) and the new state, as ``layer(x.unsqueeze(0), state)`` would, without the per-sequence set-up.
Where nothing needs gradients and no dropout runs, one call advances every layer:

* on the CPU, where the compiled engine serves the layer (float32/float64), one C++ call
  (:class:`rnnkit.engine.fused.Stepper`): the input product, the recurrent product(s) and one fused pass over
  the gates per layer, with the weights packed once and reused while they are unchanged;
* on a GPU, the cell equations of every layer captured once per batch size in a CUDA graph
  (:mod:`rnnkit.engine.graphed`) and replayed: one launch per token instead of ~10 kernels per layer, each
  launched from Python. The graph reads the parameters where they live, so in-place updates show at once.

Otherwise (training, autograd, no compiler, other devices) the layers run one by one through the cell
equations of :mod:`rnnkit.cells`, with dropout between layers in training as the layer's forward has it.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells.base import autocast_enabled
from ..engine import resolve_step_engine
from .checks import InputError, InputTypeError, check_input
from .regularisers import Draw, Options
from ..engine.graphed import CudaGraph, EagerGraph, clone_or_none, copy_into

State = Tensor | tuple[Tensor, Tensor]
MAX_GRAPHS = 8        # captured steps kept per layer (one per batch size: beam search's batch narrows)


def autocast_off(device_type: str):
    """A context that turns autocast off where it is on (a no-op elsewhere)."""
    return torch.autocast(device_type, enabled=False) if autocast_enabled(device_type) else contextlib.nullcontext()


def step_stack(layer, x: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
    """``layer`` (an :class:`rnnkit.layers.recurrent.RecurrentLayer`) one step ahead from ``x`` (N, I)."""
    name = type(layer).__name__
    if layer.bidirectional:
        raise ValueError(f"{name}.step: a bidirectional layer can't run one step at a time (its reverse "
                         f"direction reads the sequence from the end)")
    if not isinstance(x, Tensor):
        raise InputTypeError(f"{name}.step expects a Tensor x (N, {layer.input_size}), got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != layer.input_size:
        raise InputError(f"{name}.step: x must be (N, {layer.input_size}), got shape {tuple(x.shape)}")
    x, hx = layer.under_autocast(x, hx)
    check_input(f"{name}.step", x.unsqueeze(0), layer.input_size, layer.weight_ih_l0, tuple(x.shape))  # dtype, device
    h0, c0 = layer._initial_state(hx, x.unsqueeze(0), unbatched=False)
    backend = resolve_step_engine(layer.engine, layer.cell, x, _replayable(layer, x, h0, c0),
                                  needs=layer.options.active(layer.training))
    if backend == "compiled":
        h, c = _stepper(layer, x.shape[0]).step(x, h0, c0)
    elif backend == "cuda-graph":
        h, c = _graphed_step(layer, x, h0, c0).step(x, h0, c0)
    else:
        with autocast_off(x.device.type):                            # as the layer's forward: parameters' dtype
            h, c = _python_steps(layer, x, h0, c0)
    return h[-1], layer.cell.pack(h, c)


def _replayable(layer, x: Tensor, h0: Tensor, c0: Tensor | None) -> bool:
    """The step may run outside autograd and the cell equations' Python: no gradients, no training dropout."""
    if layer.training and (layer.dropout > 0 or layer.options.active(True) - {"layer_norm", "zoneout"}):
        return False
    return not (torch.is_grad_enabled()
                and any(t is not None and t.requires_grad for t in (x, h0, c0, *layer.parameters())))


def _stepper(layer, batch: int):
    """The layer's compiled stepper for ``batch`` rows, rebuilt when a parameter was replaced or changed."""
    from ..engine import fused
    params = list(layer.parameters())
    key = (batch, tuple((p.data_ptr(), p._version, p.dtype) for p in params))
    cached = layer.__dict__.get("_cache_stepper")
    if cached is None or cached[0] != key:
        weights = [list(layer.layer_weights(k, 0)) for k in range(layer.num_layers)]
        cached = (key, fused.make_stepper(layer.cell, weights, batch))
        layer.__dict__["_cache_stepper"] = cached
    return cached[1]


class GraphedStep:
    """:func:`_python_steps` for one batch size and dtype, captured once in a graph (``torch.cuda.CUDAGraph``;
    :class:`rnnkit.engine.graphed.EagerGraph` stands in off the GPU, for tests) with the layer's parameters read
    in place. A step copies x and the state into the static inputs, replays, and returns copies of the outputs."""

    def __init__(self, layer, x: Tensor, h0: Tensor, c0: Tensor | None) -> None:
        self.inputs = [x.clone(), h0.clone(), None if c0 is None else c0.clone()]
        self.graph = (CudaGraph if x.is_cuda else EagerGraph)(x.device)
        with torch.no_grad(), autocast_off(x.device.type):
            self.outputs = self.graph.capture(lambda: _python_steps(layer, *self.inputs))

    def step(self, x: Tensor, h0: Tensor, c0: Tensor | None) -> tuple[Tensor, Tensor | None]:
        copy_into(self.inputs, (x, h0, c0))
        self.graph.replay()
        h, c = self.outputs
        return h.clone(), clone_or_none(c)


def _graphed_step(layer, x: Tensor, h0: Tensor, c0: Tensor | None) -> GraphedStep:
    """The layer's captured step for this batch size and dtype (a new one when a parameter was replaced)."""
    key = (x.shape[0], x.dtype, x.device, torch.is_inference_mode_enabled(),     # inference-mode buffers can't
           tuple((p.data_ptr(), p.dtype) for p in layer.parameters()))           # be written outside it
    graphs = layer.__dict__.setdefault("_cache_graphed_steps", OrderedDict())
    if key not in graphs:
        graphs[key] = GraphedStep(layer, x, h0, c0)
        while len(graphs) > MAX_GRAPHS:
            graphs.popitem(last=False)
    graphs.move_to_end(key)
    return graphs[key]


def _python_steps(layer, x: Tensor, h0: Tensor, c0: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The layers one by one through the cell equations (autograd-aware; dropout between layers in training)."""
    cell, hs, cs = layer.cell, [], []
    if layer.options != Options():                                   # regularisers.py: one step of the same draws
        return _regularised_steps(layer, x, h0, c0)
    for k in range(layer.num_layers):
        state = cell.pack(h0[k], None if c0 is None else c0[k])
        h, c = cell.unpack(cell.step(x, state, *layer.layer_weights(k, 0)))
        hs.append(h)
        if c is not None:
            cs.append(c)
        if k < layer.num_layers - 1:
            x = F.dropout(h, layer.dropout, layer.training) if layer.dropout > 0 else h
    return torch.stack(hs), (torch.stack(cs) if cs else None)


def _regularised_steps(layer, x: Tensor, h0: Tensor, c0: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """:func:`_python_steps` with the layer's regularisers: the masks of one step, drawn in the documented order."""
    cell, hs, cs = layer.cell, [], []
    draw = Draw(layer, x, 1)
    for k in range(layer.num_layers):
        if k > 0:
            dropped = draw.layer_input(k, x.unsqueeze(0))
            if dropped is not None:
                x = dropped[0]
            elif layer.dropout > 0:
                x = F.dropout(x, layer.dropout, layer.training)
        weights, reg = draw.direction(k, 0, x.shape[0])
        state = cell.pack(h0[k], None if c0 is None else c0[k])
        new = cell.step(x, state, *weights, reg=reg.at(0)) if reg is not None else cell.step(x, state, *weights)
        h, c = cell.unpack(new)
        hs.append(h)
        if c is not None:
            cs.append(c)
        x = h
    return torch.stack(hs), (torch.stack(cs) if cs else None)
