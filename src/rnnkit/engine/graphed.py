"""The `cuda-graph` engine: the hand-written BPTT loops of :mod:`rnnkit.engine.bptt`, captured in CUDA graphs.

On a GPU the Python loop's time is launches, not arithmetic: ~10 small kernels per step forward and ~15
backward, each a few microseconds of Python and driver work while the GPU waits. A CUDA graph records the
whole forward (and the whole backward) once per shape and replays it as one launch, so the loop runs at the
GPU's pace. This is how rnnkit serves the cells cuDNN lacks (the lecture's GRU) on a GPU, and any cell when
``engine="cuda-graph"`` is asked for; the loops, and so the arithmetic, are exactly the Python engine's.

The regularisers run too (recurrent dropout, zoneout, layer norm: :mod:`.masked`'s loops): their masks and layer
norm's gains and biases are static inputs like the weights, drawn outside the graph (:mod:`rnnkit.layers.regularisers`)
and copied in per call, so every call gets its own masks and the graphs hold no random generator.

Per (cell, shapes, dtype, device, mask, bias, regularisers, training, inference mode) an entry holds static input
buffers and the captured graphs; past ``MAX_ENTRIES`` entries or ``MAX_BYTES`` of buffers the least recently used go.
A call copies its tensors into the buffers, replays, and clones what it returns and what its backward needs,
so calls of the same shape (the layers of a stack, both directions, two forwards before one backward) never
share results. A new shape costs one capture (a forward and backward run plus tens to a few hundred
milliseconds). A call of T steps runs in the entry of :func:`bucket` (T) steps, its last steps masked out (their
states held, as past a sequence's end): at most 12.5% more steps, so that windows whose length varies (AWD's
variable BPTT, batches of sentences) share a few entries instead of capturing every length. Not thread-safe: one
thread per process uses an entry at a time (DDP's one process per GPU is fine).

Where there is no GPU (the tests), :class:`EagerGraph` stands in for ``torch.cuda.CUDAGraph``: replaying re-runs
the recorded function into the same output buffers, so the copying and cloning above are tested on the CPU.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells.extras import as_weights
from ..cells.spec import Recurrence
from .bptt import backward_pass, forward_pass
from .ops import untraced

MAX_ENTRIES = 32
MAX_BYTES = 2 << 30                 # the entries' buffers together (their graphs' pools come on top)
_entries: OrderedDict = OrderedDict()


class EagerGraph:
    """``torch.cuda.CUDAGraph``'s part used here, run eagerly: replay re-runs the function into its first outputs."""

    def __init__(self, device: torch.device, pool=None) -> None:
        self.pool = None

    def capture(self, fn: Callable[[], tuple]) -> tuple:
        self._fn = fn
        self._out = fn()
        return self._out

    def replay(self) -> None:
        for static, new in zip(self._out, self._fn()):
            if static is not None:
                static.copy_(new)


class CudaGraph:
    """One captured CUDA graph; warmed up on a side stream first, as CUDA graph capture requires."""

    def __init__(self, device: torch.device, pool=None) -> None:
        self.graph = torch.cuda.CUDAGraph()
        self.device = device
        self.pool = pool

    def capture(self, fn: Callable[[], tuple]) -> tuple:
        with torch.cuda.device(self.device):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                fn()                                              # cuBLAS handles and workspaces, outside the capture
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(self.graph, pool=self.pool, capture_error_mode="thread_local"):
                out = fn()
        self.pool = self.graph.pool()
        return out

    def replay(self) -> None:
        self.graph.replay()


def unavailable_reason(x: Tensor) -> str | None:
    """Why the graphed loop can't run on ``x``'s device, or ``None`` when it can."""
    if x.device.type != "cuda":
        return f"the CUDA-graph engine needs a CUDA tensor, not {x.device.type}"
    if not x.is_floating_point():
        return f"the CUDA-graph engine needs a floating-point input, got {x.dtype}"
    if not untraced((x,)):
        return ("CUDA graphs can't be captured while torch.compile, torch.export, torch.jit.trace or torch.func "
                "records the call")
    return None


BUCKETS_PER_OCTAVE = 8


def bucket(T: int) -> int:
    """The steps the entry for ``T`` steps is captured for: ``T`` rounded up to a multiple of an eighth of the
    largest power of two not above it (70 -> 72, 35 -> 36, 200 -> 208; below 16 steps ``T`` itself)."""
    step = max(1, (1 << (T.bit_length() - 1)) // BUCKETS_PER_OCTAVE)
    return -(-T // step) * step


def _padded(x: Tensor, mask: Tensor | None, extra: tuple, steps: int) -> tuple[Tensor, Tensor, tuple]:
    """``x``, its mask and the zoneout masks with zero steps appended up to ``steps``, the new steps masked out."""
    T, N = x.shape[:2]

    def pad(t: Tensor) -> Tensor:
        return torch.cat([t, t.new_zeros(steps - T, *t.shape[1:])])

    valid = torch.ones(T, N, 1, dtype=torch.bool, device=x.device) if mask is None else mask
    zh, zc = (None if z is None else pad(z) for z in extra[1:3])
    return pad(x), pad(valid), (extra[0], zh, zc, *extra[3:])


def copy_into(static: list, values) -> None:
    """Each value into its static buffer (a graph's input), skipping the ``None`` ones."""
    for dst, src in zip(static, values):
        if dst is not None:
            dst.copy_(src)


# The static inputs, in order: the engine contract's (x h0 c0 w_ih w_hh b_ih b_hh mask w_hr), then the
# regularisers' (h_mask zh zc, and layer norm's six gains and biases), each None where it is off.
N_PLAIN, N_MASKS, N_LN = 9, 3, 6


def _layer_norm(inputs: list) -> tuple | None:
    """Layer norm's six gains and biases among the static inputs, or ``None`` without layer norm."""
    ln = inputs[N_PLAIN + N_MASKS:]
    return None if ln[0] is None else tuple(ln)


class _Entry:
    """Static buffers and captured graphs for one shape: ``inputs`` are copied in, the graphs read them."""

    def __init__(self, cell: Recurrence, args: tuple, training: bool, has_bias: bool) -> None:
        x = args[0]
        self.inputs = [None if a is None else a.detach().clone() for a in args]
        self.dY = self.dc = self.backward = None                                   # the backward's, when training
        self.grads: tuple = ()
        self.forward = (CudaGraph if x.is_cuda else EagerGraph)(x.device)
        masks = self.inputs[N_PLAIN:N_PLAIN + N_MASKS]
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            self.outputs = list(self.forward.capture(lambda: forward_pass(
                cell, *self.inputs[:N_PLAIN], *masks, _layer_norm(self.inputs))))
            if training:
                self.backward = self._capture_backward(cell, has_bias)
        buffers = [*self.inputs, *self.outputs, *self.grads, self.dY, self.dc]
        self.nbytes = sum(t.numel() * t.element_size() for t in buffers if t is not None)

    def _capture_backward(self, cell: Recurrence, has_bias: bool):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, w_hr = self.inputs[:N_PLAIN]
        masks, ln = self.inputs[N_PLAIN:N_PLAIN + N_MASKS], _layer_norm(self.inputs)
        hs, cs, *saved = self.outputs
        if ln is not None:                             # the forward's outputs end with layer norm's norm and rstd
            ln = (*saved[-2:], *ln)
            saved = saved[:-2]
        self.dY = x.new_zeros(hs.shape[0] - 1, *hs.shape[1:])
        self.dc = x.new_zeros(cs.shape[1:]) if cell.has_cell_state else None
        graph = type(self.forward)(x.device, pool=self.forward.pool)
        self.grads = graph.capture(lambda: backward_pass(
            cell, x, hs, cs, tuple(saved), w_ih, w_hh, mask, self.dY, self.dc, has_bias, True, w_hr, *masks, ln))
        return graph


def _entry(cell: Recurrence, args: tuple, training: bool) -> _Entry:
    has_bias = args[5] is not None
    key = (cell, training, has_bias, args[0].device, args[0].dtype, torch.is_inference_mode_enabled(),
           *(None if a is None else tuple(a.shape) for a in args))   # inference-mode buffers can't serve outside
    entry = _entries.get(key)
    if entry is None:
        entry = _entries[key] = _Entry(cell, args, training, has_bias)
        while len(_entries) > 1 and (len(_entries) > MAX_ENTRIES
                                     or sum(e.nbytes for e in _entries.values()) > MAX_BYTES):
            _entries.popitem(last=False)                       # the least recently used; the newest stays
    _entries.move_to_end(key)
    return entry


def _replay_forward(cell: Recurrence, args: tuple, training: bool) -> _Entry:
    """The entry for ``args`` (the static inputs, :data:`N_PLAIN`) with them copied in and its forward replayed."""
    entry = _entry(cell, args, training)
    copy_into(entry.inputs, args)
    entry.forward.replay()
    return entry


def clone_or_none(t: Tensor | None) -> Tensor | None:
    """A copy a later replay can't overwrite."""
    return None if t is None else t.clone()


class GraphedBPTT(torch.autograd.Function):
    """:mod:`rnnkit.engine.bptt`'s forward and backward passes, each replayed from a captured graph. ``extra``: the
    regularisers' static inputs (h_mask zh zc and layer norm's six), the last six differentiable."""

    @staticmethod
    def forward(ctx, cell, mask, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, *extra):
        entry = _replay_forward(cell, (x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, w_hr, *extra), training=True)
        hs, cs, *saved = (clone_or_none(t) for t in entry.outputs)
        ctx.entry = entry
        ctx.save_for_backward(x, hs, cs, w_ih, w_hh, mask, w_hr, *extra, *saved)
        return (hs[1:], cs[-1].clone()) if cell.has_cell_state else hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dc_T=None):
        entry = ctx.entry
        x, hs, cs, w_ih, w_hh, mask, w_hr, *rest = ctx.saved_tensors
        extra, saved = rest[:N_MASKS + N_LN], rest[N_MASKS + N_LN:]
        inputs = entry.inputs                  # another call of this shape may have replaced any of them since
        copy_into([inputs[0], *inputs[3:5], *inputs[7:]], (x, w_ih, w_hh, mask, w_hr, *extra))
        copy_into(entry.outputs, (hs, cs, *saved))
        if dY is None:
            entry.dY.zero_()
        else:
            entry.dY.copy_(dY)
        if entry.dc is not None and dc_T is None:
            entry.dc.zero_()
        elif entry.dc is not None:
            entry.dc.copy_(dc_T)
        entry.backward.replay()
        # dx dh0 dc0 dw_ih dw_hh db_ih db_hh, then dw_hr (a projection's), then layer norm's six, where they are
        grads = (*entry.grads, *[None] * (8 + N_LN - len(entry.grads)))
        grads = (*grads[:8], *[None] * N_MASKS, *grads[8:])
        return None, None, *(clone_or_none(g) if need else None for g, need in zip(grads, ctx.needs_input_grad[2:]))


def run_graphed(cell: Recurrence, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple,
                mask: Tensor | None, reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``cell`` over ``x`` from captured graphs; same arguments and results as ``ops.run_bptt`` (the LSTM's
    projection ``weight_hr`` fifth in ``weights``; ``reg`` a :class:`rnnkit.cells.extras.Regularisation`)."""
    w_ih, w_hh, b_ih, b_hh, *rest = weights
    w_hr = rest[0] if rest else None
    c0 = c0 if cell.has_cell_state else None
    args = (x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    extra = (None,) * (N_MASKS + N_LN)
    if reg is not None and not reg.empty:                # (the loops take zoneout's bools as floats)
        extra = (reg.h_mask, as_weights(reg.zoneout_h, x), as_weights(reg.zoneout_c, x),
                 *(reg.ln if reg.ln is not None else (None,) * N_LN))
    T, steps = x.shape[0], bucket(x.shape[0])
    if steps != T:
        x, mask, extra = _padded(x, mask, extra, steps)
        args = (x, *args[1:])
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (*args, w_hr, *extra)):
        out = GraphedBPTT.apply(cell, mask, *args, w_hr, *extra)
        h_all, c_T = out if cell.has_cell_state else (out, None)
    else:
        hs, cs = _replay_forward(cell, (*args, mask, w_hr, *extra), training=False).outputs[:2]
        h_all = hs[1:].clone()
        c_T = None if cs is None else cs[-1].clone()
    return h_all[:T], h_all[-1], c_T                     # past T the states are held: h_all[-1] is h_T
