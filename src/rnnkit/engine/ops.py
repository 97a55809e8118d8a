"""The hand-written BPTT as PyTorch custom operators: ``rnnkit::recurrence`` and ``rnnkit::recurrence_backward``.

One operator runs one direction of one layer over a whole sequence, forward or backward, on either backend:
``"python"`` (:mod:`.bptt`'s loops) or ``"compiled"`` (the C++ loops of :mod:`.fused`). Registered with
``torch.library``, with fake (meta) implementations and an autograd formula, they are one node to autograd,
``torch.compile(fullgraph=True)``, ``torch.export`` and ``torch.jit.trace`` (``jit.save`` too): no graph break,
the same numbers as eager. (Under ``torch.func`` transforms the resolver picks ``engine="autograd"``, whose plain
operations ``grad``, ``vmap`` and higher orders handle; see :mod:`.resolve`.)

``rnnkit::recurrence(backend, kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mask, window, store, h_mask=None,
zoneout_h=None, zoneout_c=None, ln_ih_weight=None, ln_ih_bias=None, ln_hh_weight=None, ln_hh_bias=None,
ln_c_weight=None, ln_c_bias=None)`` (the three masks of :mod:`.masked`: recurrent dropout (N, H), zoneout of h and
of the LSTM's C (T, N, H); layer norm's gains and biases of ``x U`` and the recurrent product (G*H,) and of the
LSTM's cell (H,), compiled only; the backward op takes them last as well) returns
eight tensors, an empty one ``(0,)`` where a kernel has nothing: ``hs`` (T+1, N, P) with ``hs[0] = h0``; ``c_T``
(N, H); and what the backward needs: ``cs`` (LSTM cells), ``gates`` (activated), ``aux`` (the PyTorch GRU's
``h W_n + b_hn``), ``cell_out`` (the LSTM's ``o * tanh(C)`` before a projection), ``norm`` and ``rstd`` (layer
norm's normalised values and 1/sigma, ``csrc/fused.h``; under layer norm the compiled loop keeps no gates, the
recurrent product's normalised values and, in rows T.., the input projection's of its first
:func:`kept_input_steps` steps, and its backward rebuilds the rest). ``store=False`` (compiled only)
runs in windows of ``window`` steps and keeps only the states and the cell at each window boundary. Shapes and
aliasing as in :mod:`.bptt`'s contract; the outputs never alias the inputs or each other.

Eager calls (no ``torch.compile``, ``torch.export``, ``jit.trace``, fake tensors or dispatch modes: most
training) skip the dispatcher: :class:`_EagerRecurrence` runs the same implementation, saving and gradients as a
``torch.autograd.Function``. ``torch.library``'s Python wrapper (defaults filled in, arguments flattened and
unflattened) cost about 0.6 ms a training step of a 2-layer stack (four calls): 3-4% of a (35, 20, 200) step
(``benchmarks/step_overhead.py``; BENCHMARKS.md, "Where the time went").

Limit, said where it is met: the backward is first-order only (a second backward through it names
``engine="autograd"``, whose plain operations autograd differentiates twice).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..cells.extras import as_weights
from ..cells.spec import recurrence
from .bptt import KERNELS, backward_pass, forward_pass
from .build import extension

def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


def _none_if_empty(t: Tensor | None) -> Tensor | None:
    return None if t is None or t.numel() == 0 and t.dim() == 1 else t


LAYER_NORM_ROOM = (3, 10)   # 0.3 of the plain cell's saved bytes, weights included, that layer norm may add (below)


def kept_input_steps(kernel: str, T: int, N: int, I: int, H: int, zoneout_masks: int, itemsize: int = 4) -> int:
    """How many leading steps the compiled loop under layer norm keeps LN(x_t U)'s normalised values (G*H a row)
    and 1/sigma (G) for, so that its backward neither recomputes x_t U (a matmul) nor renormalises it there
    (``csrc/engine.cpp``, ``kept``): as many as fit in :data:`LAYER_NORM_ROOM` of what the plain cell's step saves
    for a layer of T steps, N sequences, I inputs and H units (its states and gates, and its weights U and W, which
    the step saves too), less what layer norm saves beyond it and zoneout's masks (``zoneout_masks`` of them, of h
    and of the LSTM's C: a byte per unit and step; ``itemsize`` is the values' bytes). So layer norm, with or
    without the other regularisers, adds at most 0.3x the plain cell's bytes wherever it keeps a step (the issue's
    bound is 1.3x): the LSTM keeps ~50-60% of its steps, the GRUs a little less (Cho's) or more (PyTorch's), the
    Elman RNN none but where its weights outweigh its states (its LN(h W) costs more than the room). Memory for
    time: each kept step spares its share of the backward's recomputed matmul.

    In integers only (the room's fraction and the weights' share per row multiplied out): under ``torch.export``
    with dynamic T and N the count is a symbolic expression, not a guard on one shape."""
    cell = recurrence(kernel)
    GH, G = cell.gates * H, cell.gates
    gated = cell.gates > 1 or zoneout_masks > 0                      # the plain cell keeps its gates
    plain = H * (1 + cell.has_cell_state + KERNELS[kernel].bias_in_loop) + GH * gated   # hs, cs, aux, gates
    extra = GH + G - GH * gated                                      # norm and rstd instead of the gates
    num, den = LAYER_NORM_ROOM
    # T * room, room = num/den (plain + GH (I + H) / (T N)) - extra - zoneout_masks H / itemsize, over den N itemsize
    scaled = (num * (plain * T * N + GH * (I + H)) * itemsize - den * (extra * itemsize + zoneout_masks * H) * T * N)
    return torch.sym_max(0, torch.sym_min(T, scaled // (den * N * itemsize * (GH + G))))


def _kept_steps(kernel: str, x: Tensor, H: int, zoneout_h: Optional[Tensor], zoneout_c: Optional[Tensor]) -> int:
    """The forward's :func:`kept_input_steps` for input ``x`` (T, N, I): one place for the real and fake kernels."""
    masks = (zoneout_h is not None) + (zoneout_c is not None)
    return kept_input_steps(kernel, *x.shape, H, masks, x.element_size())


def _forward_impl(backend: str, kernel: str, x: Tensor, h0: Tensor, c0: Optional[Tensor], w_ih: Tensor,
                  w_hh: Tensor, b_ih: Optional[Tensor], b_hh: Optional[Tensor], w_hr: Optional[Tensor],
                  mask: Optional[Tensor], window: int, store: bool, h_mask: Optional[Tensor] = None,
                  zoneout_h: Optional[Tensor] = None, zoneout_c: Optional[Tensor] = None,
                  ln_ih_weight: Optional[Tensor] = None, ln_ih_bias: Optional[Tensor] = None,
                  ln_hh_weight: Optional[Tensor] = None, ln_hh_bias: Optional[Tensor] = None,
                  ln_c_weight: Optional[Tensor] = None, ln_c_bias: Optional[Tensor] = None) -> list[Tensor]:
    cell = recurrence(kernel)
    norm = rstd = None
    if backend == "compiled":
        kept = 0 if ln_ih_weight is None else _kept_steps(kernel, x, w_hh.shape[0] // cell.gates, zoneout_h,
                                                            zoneout_c)
        hs, c_T, cs, gates, aux, cell_out, norm, rstd = extension().forward(
            kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, window, store, w_hr, h_mask, zoneout_h, zoneout_c,
            ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias, ln_c_weight, ln_c_bias, kept)
    else:                                        # (the Python loops take zoneout's bools as floats)
        ln = None if ln_ih_weight is None else (ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias, ln_c_weight,
                                                ln_c_bias)
        hs, cs, *saved = forward_pass(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, w_hr, h_mask,
                                      as_weights(zoneout_h, x), as_weights(zoneout_c, x), ln)
        if ln is not None:
            rstd, norm = saved.pop(), saved.pop()
        gates = saved.pop(0) if saved else None
        aux = saved.pop(0) if KERNELS[kernel].bias_in_loop else None
        cell_out = saved.pop(0) if w_hr is not None else None
        c_T = None if cs is None else cs[-1].clone()
    return [hs] + [_empty(x) if t is None else t for t in (c_T, cs, gates, aux, cell_out, norm, rstd)]


recurrence_op = torch.library.custom_op("rnnkit::recurrence", mutates_args=())(_forward_impl)


@recurrence_op.register_fake
def _(backend, kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mask, window, store, h_mask=None, zoneout_h=None,
      zoneout_c=None, ln_ih_weight=None, ln_ih_bias=None, ln_hh_weight=None, ln_hh_bias=None, ln_c_weight=None,
      ln_c_bias=None):
    cell = recurrence(kernel)
    T, N, _ = x.shape
    P, GH = w_hh.shape[1], w_hh.shape[0]
    H = GH // cell.gates
    new = x.new_empty
    none = new(0)
    lstm = cell.has_cell_state
    if not store:                                # windows: states, and the cell at each window boundary
        segments = -(-T // max(1, min(window, T)))
        return [new(T + 1, N, P), new(N, H) if lstm else none, new(segments + 1, N, H) if lstm else none,
                none, none, none, none, none]
    normed = ln_ih_weight is not None
    gated = (cell.gates > 1 or zoneout_h is not None) and not (normed and backend == "compiled")
    # layer norm: the compiled loop keeps h W's normalised values, and x U's of its first `kept` steps after them
    # (csrc/fused.h); the Python loops x U's, h W's and the LSTM's C^_t's, side by side
    rows, width, stats = T, 2 * GH + H * lstm, 2 * cell.gates + lstm
    if backend == "compiled" and normed:
        rows, width, stats = T + _kept_steps(kernel, x, H, zoneout_h, zoneout_c), GH, cell.gates
    return [new(T + 1, N, P), new(N, H) if lstm else none, new(T + 1, N, H) if lstm else none,
            new(T, N, GH) if gated else none, new(T, N, H) if KERNELS[kernel].bias_in_loop else none,
            new(T, N, H) if w_hr is not None else none,
            new(rows, N, width) if normed else none, new(rows, N, stats) if normed else none]


def _backward_impl(backend: str, kernel: str, x: Tensor, hs: Tensor, cs: Optional[Tensor],
                           gates: Optional[Tensor], aux: Optional[Tensor], cell_out: Optional[Tensor],
                           w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor], b_hh: Optional[Tensor],
                           w_hr: Optional[Tensor], mask: Optional[Tensor], dY: Tensor, dc_T: Optional[Tensor],
                           need_dx: bool, window: int, h_mask: Optional[Tensor] = None,
                           zoneout_h: Optional[Tensor] = None, zoneout_c: Optional[Tensor] = None,
                           norm: Optional[Tensor] = None, rstd: Optional[Tensor] = None,
                           ln_ih_weight: Optional[Tensor] = None, ln_ih_bias: Optional[Tensor] = None,
                           ln_hh_weight: Optional[Tensor] = None, ln_hh_bias: Optional[Tensor] = None,
                           ln_c_weight: Optional[Tensor] = None, ln_c_bias: Optional[Tensor] = None) -> list[Tensor]:
    if backend == "compiled":
        grads = extension().backward(kernel, x, hs, cs, gates, aux, w_ih, w_hh, b_ih, b_hh, mask, dY, dc_T,
                                     need_dx, window, w_hr, cell_out, h_mask, zoneout_h, zoneout_c, norm, rstd,
                                     ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias, ln_c_weight, ln_c_bias)
    else:
        saved = tuple(t for t in (gates, aux, cell_out) if t is not None)
        ln = None if ln_ih_weight is None else (norm, rstd, ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias,
                                                ln_c_weight, ln_c_bias)
        grads = list(backward_pass(recurrence(kernel), x, hs, cs, saved, w_ih, w_hh, mask, dY, dc_T,
                                   b_ih is not None, need_dx, w_hr, h_mask, as_weights(zoneout_h, x),
                                   as_weights(zoneout_c, x), ln))
        grads += [None] * (14 - len(grads))
    return [_empty(x) if g is None else g for g in grads]


recurrence_backward_op = torch.library.custom_op("rnnkit::recurrence_backward", mutates_args=())(_backward_impl)


@recurrence_backward_op.register_fake
def _(backend, kernel, x, hs, cs, gates, aux, cell_out, w_ih, w_hh, b_ih, b_hh, w_hr, mask, dY, dc_T,
      need_dx, window, h_mask=None, zoneout_h=None, zoneout_c=None, norm=None, rstd=None, ln_ih_weight=None,
      ln_ih_bias=None, ln_hh_weight=None, ln_hh_bias=None, ln_c_weight=None, ln_c_bias=None):
    none = x.new_empty(0)
    def like(t):
        return none if t is None else torch.empty_like(t)
    c0 = None if cs is None else cs.new_empty(cs.shape[1:])
    return [torch.empty_like(x) if need_dx else none, hs.new_empty(hs.shape[1:]), like(c0), like(w_ih),
            like(w_hh), like(b_ih), like(b_hh), like(w_hr), like(ln_ih_weight), like(ln_ih_bias),
            like(ln_hh_weight), like(ln_hh_bias), like(ln_c_weight), like(ln_c_bias)]


def _setup(ctx, inputs, output) -> None:
    backend, kernel, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mask, window, store, *extra = inputs
    extra = (list(extra) + [None] * 9)[:9]     # h_mask, zoneout_h, zoneout_c, the 6 layer-norm tensors (or None)
    hs, c_T, cs, gates, aux, cell_out, norm, rstd = output
    ctx.backend, ctx.kernel = backend, kernel
    ctx.window = 0 if store else window
    ctx.save_for_backward(x, hs, cs, gates, aux, cell_out, norm, rstd, w_ih, w_hh, b_ih, b_hh, w_hr, mask, *extra)


def _gradients(ctx, d_hs: Tensor | None, d_c_T: Tensor | None, backward) -> tuple:
    """The inputs' gradients from the saved tensors and the gradients of ``hs`` and ``c_T``."""
    x, hs, cs, gates, aux, cell_out, norm, rstd, w_ih, w_hh, b_ih, b_hh, w_hr, mask, *extra = ctx.saved_tensors
    dY = hs.new_zeros(hs.shape[0] - 1, *hs.shape[1:]) if d_hs is None else d_hs[1:]
    dc_T = _none_if_empty(d_c_T)
    cs = _none_if_empty(cs)
    if cs is not None and dc_T is None:
        dc_T = cs.new_zeros(cs.shape[1:])
    grads = backward(ctx.backend, ctx.kernel, x, hs, cs, _none_if_empty(gates), _none_if_empty(aux),
                     _none_if_empty(cell_out), w_ih, w_hh, b_ih, b_hh, w_hr, mask, dY.contiguous(), dc_T,
                     ctx.needs_input_grad[2], ctx.window, *_extra_arguments(extra, norm, rstd))
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr, *d_ln = (_none_if_empty(g) for g in grads)
    return (None, None, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr, None, None, None,
            None, None, None, *d_ln)[:len(ctx.needs_input_grad)]    # the masks and layer norm, where passed


def _extra_arguments(extra: list, norm: Tensor, rstd: Tensor) -> tuple:
    """The backward op's optional arguments: none without masks or layer norm (the schema's defaults)."""
    h_mask, zh, zc, *ln = extra
    if ln[0] is not None:
        return (h_mask, zh, zc, _none_if_empty(norm), _none_if_empty(rstd), *ln)
    return () if h_mask is None and zh is None and zc is None else (h_mask, zh, zc)


def _second_order_error(backend: str) -> RuntimeError:
    return RuntimeError(f"rnnkit: a second backward (create_graph=True, then differentiating the gradients) "
                        f"through the hand-written BPTT of the {backend!r} engine is not supported; "
                        f"engine='autograd' supports higher-order gradients")


recurrence_op.register_autograd(lambda ctx, grads: _gradients(ctx, grads[0], grads[1], recurrence_backward_op),
                                setup_context=_setup)


def _refuse_second_order(ctx, grads):
    raise _second_order_error(ctx.backend)


recurrence_backward_op.register_autograd(_refuse_second_order,
                                         setup_context=lambda ctx, inputs, output: setattr(ctx, "backend", inputs[0]))


class _EagerRecurrence(torch.autograd.Function):
    """``rnnkit::recurrence`` and its autograd formula without the dispatcher, for plain eager tensors: the same
    ``_forward_impl``, ``_setup`` and ``_gradients``. A backward with ``create_graph=True`` goes through
    ``rnnkit::recurrence_backward``, whose own formula refuses a second backward, naming the engine that can."""

    @staticmethod
    def forward(ctx, *inputs):
        output = _forward_impl(*inputs)
        ctx.mark_non_differentiable(*output[2:])
        ctx.set_materialize_grads(False)
        _setup(ctx, inputs, output)
        return tuple(output)

    @staticmethod
    def backward(ctx, d_hs, d_c_T, *_):
        return _gradients(ctx, d_hs, d_c_T, recurrence_backward_op if torch.is_grad_enabled() else _backward_impl)


def untraced(tensors: tuple) -> bool:
    """True where nothing traces a call on ``tensors`` (compile, export, jit.trace, torch.func, fake or functional
    tensors, dispatch modes): plain eager work, which needs no dispatcher. Here :class:`_EagerRecurrence` runs the
    operator then; :mod:`.weight_drop` asks the same."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch._C._len_torch_dispatch_stack()
                or torch._C._are_functorch_transforms_active()
                or any(type(t) not in (Tensor, torch.nn.Parameter) for t in tensors if t is not None))


def run_op(backend: str, cell, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple, mask: Tensor | None,
           window: int = 0, store: bool = True, reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(h_seq (T, N, P), h_T, C_T or None)`` from one call of ``rnnkit::recurrence``. ``reg``: a
    :class:`rnnkit.cells.extras.Regularisation` whose masks the loops take, and whose layer norm the compiled
    loop takes."""
    w_ih, w_hh, b_ih, b_hh, *rest = weights
    w_hr = rest[0] if rest else None
    extra = ()
    if reg is not None and not reg.empty:
        extra = tuple(None if m is None else m.contiguous() for m in (reg.h_mask, reg.zoneout_h, reg.zoneout_c))
        if reg.ln is not None:
            extra += reg.ln
    tensors = (x, h0, c0 if cell.has_cell_state else None, w_ih, w_hh, b_ih, b_hh, w_hr, mask)
    op = _EagerRecurrence.apply if untraced(tensors + extra) else recurrence_op
    out = op(backend, cell.kernel, *tensors, window, store, *extra)
    h_seq = out[0][1:]
    return h_seq, h_seq[-1], (out[1] if cell.has_cell_state else None)


def run_bptt(cell, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple,
             mask: Tensor | None, reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """The ``python`` engine: ``cell`` over ``x`` with :mod:`.bptt`'s loops; ``(h_seq, h_T, C_T or None)``.
    ``weights`` may carry the LSTM's projection ``weight_hr`` fifth; ``reg`` recurrent-dropout and zoneout
    masks (:mod:`.masked`)."""
    return run_op("python", cell, x, h0, c0, weights, mask, reg=reg)
