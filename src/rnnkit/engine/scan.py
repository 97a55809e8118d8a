"""The linear recurrence ``h_t = a_t * h_{t-1} + b_t`` over a whole sequence, its backward written by hand, and the
minimal GRU / LSTM (:mod:`rnnkit.cells.minimal`) run over a sequence on it.

Contract
--------
``T`` steps, ``N`` sequences, ``H`` units, ``G`` gate blocks (2 minGRU, 3 minLSTM), everything time-major:

=============  =============  ==========================================================================
``a``, ``b``   (T, N, H)      coefficients; ``h0`` (N, H) the state before the first step
``reverse``                   the steps run from ``T-1`` down to 0 (``h_{t-1}`` is then the state at ``t+1``)
``x``          (T, N, I)      input of :func:`run_minimal`; ``weight`` (G*H, I), ``bias`` (G*H,) or ``None``
``lengths``    (N,) int64     valid steps per sequence, or ``None``; past a sequence's end ``a = 1, b = 0``
                              (the state is held) and the output is 0, so ``h_n`` is the state at its last
                              valid step (in the direction of travel)
=============  =============  ==========================================================================

The backward is the same recurrence run the other way (a reverse scan): with ``g_t = dL/dh_t`` in total,
``g_t = dY_t + a_{t+1} * g_{t+1}``, then ``da_t = g_t * h_{t-1}``, ``db_t = g_t`` and ``dh0 = a_1 * g_1``.

What is saved for the backward: :class:`LinearScan` keeps ``a``, ``h`` and ``h0``; :class:`MinimalScan` keeps
``x`` and ``U`` (as any linear layer), the gate pre-activations ``x U`` (T, N, G*H) and the outputs ``h``
(T, N, H), and recomputes the gates from them in its backward pass, chunk by chunk (the full gate gradient
(T, N, G*H) is never held). Memory is linear in ``T``; nothing aliases an argument; the saved tensors are never
written, so ``retain_graph`` and ``gradcheck`` work.

Implementations (``scan=``), the same numbers:

``"compiled"``  C++ (``csrc/scan.cpp``): one pass forward and one backward over the sequence, sequential in T,
                vectorized and split over threads across the N*H columns; for the minimal cells the gates,
                the bias, the scan and (backward) the bias gradient sit in that same pass. On a CPU the scan is
                memory bound, and one pass that reads each tensor once is the fastest way to run it.
``"torch"``     torch operators, a two-level (chunked) scan: ``C ≈ √T`` steps per chunk, all chunks at once
                (``C`` vectorized steps), then the ``T/C`` chunk carries, then one fix-up ``h += P * carry``
                where ``P`` is the running product of ``a`` inside a chunk. No division, so nothing overflows.
                Runs anywhere (GPU included); the gates are torch operators under autograd.
``"log"``       Heinsen's log-space scan of the paper (needs the positive activation, ``log_space=True``):
                ``h_t = e^{a*_t} h_0 + exp(a*_t + logcumsumexp_{s<=t}(log b_s - a*_s))``, ``a* = cumsum(log a)``,
                all torch operators under autograd: the straightforward implementation users report as slow.
``"autograd"``  the recurrence step by step in plain torch operators, which autograd differentiates (twice, too)
                and ``torch.compile``, ``jit.trace`` and ``torch.func`` record: the slowest, for tracing and
                higher-order gradients. Under ``torch.export`` with a dynamic number of steps it is one operator,
                ``rnnkit::linear_scan``, so that the number stays dynamic in the exported program.
``"auto"``      ``"compiled"`` where it can serve (CPU, float32/float64, the extension built), else ``"torch"``;
                ``"autograd"`` where a call is traced or transformed (the C++ pass is one call they can't see
                into). The hand-written backwards (``"compiled"``, ``"torch"``) refuse a second backward, naming
                the scans that have one.
"""
from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells.minimal import GATES, coefficients, log_coefficients
from .ops import untraced

SCANS = ("auto", "compiled", "torch", "log", "autograd")
_CELL_ID = {"mingru": 0, "minlstm": 1}
_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- which implementation

def _compiled_module():
    """The compiled extension if it has the scan kernels, else ``None`` (builds it on first use)."""
    from . import build
    module = build.extension()
    return module if module is not None and hasattr(module, "min_forward") else None


def compiled_unavailable_reason(x: Tensor) -> str | None:
    """Why the compiled scan can't run on ``x``, or ``None`` when it can."""
    if x.device.type != "cpu":
        return f"the compiled scan runs on the CPU only, not on {x.device.type}"
    if x.dtype not in _DTYPES:
        return f"the compiled scan has no {x.dtype} kernels (float32 and float64 only)"
    if _compiled_module() is None:
        from . import build
        return f"the C++ extension is unavailable ({build.state.get('error') or 'it has no scan kernels'})"
    return None


def resolve_scan(scan: str, x: Tensor) -> str:
    """The implementation that will run: ``auto`` picks ``compiled`` where it can serve, else ``torch``; an
    explicit ``compiled`` that can't serve raises, saying why."""
    if scan not in SCANS:
        raise ValueError(f"scan must be one of {SCANS}, got {scan!r}")
    if scan in ("log", "autograd"):
        return scan
    if not untraced((x,)):                         # compile, export, jit.trace, torch.func, fake tensors
        if scan == "compiled":
            raise RuntimeError("scan='compiled' can't run under torch.compile, torch.export, jit.trace or "
                               "torch.func (the C++ pass is one call they can't see into); use scan='auto' or "
                               "'autograd'")
        return "autograd"
    if scan == "torch":
        return scan
    reason = compiled_unavailable_reason(x)
    if reason is None:
        return "compiled"
    if scan == "compiled":
        raise RuntimeError(f"scan='compiled' cannot run here: {reason}. Use scan='auto' or 'torch'.")
    return "torch"


# --------------------------------------------------------------------------- the scan in torch operators

def _chunk(T: int) -> int:
    return max(1, math.isqrt(T - 1) + 1) if T > 1 else 1     # ceil(sqrt(T))


def scan_torch(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False, out: Tensor | None = None) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` for every t with torch operators (no autograd bookkeeping of its own).

    Two levels: the first ``K*C`` steps as ``K`` chunks of ``C`` steps, each chunk scanned from zero and all
    chunks at once (``C`` operations on (K, N, H) slices), with ``P`` the running product of ``a`` inside each
    chunk; then the state entering each chunk (``K`` small steps); then ``h += P * carry`` in one operation. The
    last ``T - K*C`` steps are run one by one (after the chunks, or before them when ``reverse``).
    """
    T = a.shape[0]
    h = torch.empty_like(b) if out is None else out
    C = _chunk(T)
    K = T // C
    main = slice(0, K * C)

    def tail(prev: Tensor) -> Tensor:                          # the R leftover steps K*C .. T-1
        steps = range(K * C, T) if not reverse else range(T - 1, K * C - 1, -1)
        for t in steps:
            prev = torch.addcmul(b[t], a[t], prev, out=h[t])
        return prev

    start = h0 if not reverse else tail(h0)
    if K > 0:
        a2, b2, h2 = (v[main].view(K, C, *v.shape[1:]) for v in (a, b, h))
        P = torch.empty_like(a2)
        order = list(range(C)) if not reverse else list(range(C - 1, -1, -1))
        h2[:, order[0]].copy_(b2[:, order[0]])                 # every chunk from a zero state, all at once
        P[:, order[0]].copy_(a2[:, order[0]])
        for prev, i in itertools.pairwise(order):
            torch.addcmul(b2[:, i], a2[:, i], h2[:, prev], out=h2[:, i])     # h = a h_prev + b
            torch.mul(a2[:, i], P[:, prev], out=P[:, i])                     # P = a P_prev
        last = C - 1 if not reverse else 0                     # each chunk's final step in the direction of travel
        carry = torch.empty((K,) + tuple(h0.shape), dtype=h.dtype, device=h.device)
        chunks = range(K) if not reverse else range(K - 1, -1, -1)
        state = start
        for k in chunks:                                       # the state entering each chunk
            carry[k] = state
            state = torch.addcmul(h2[k, last], P[k, last], state)
        h2.addcmul_(P, carry.unsqueeze(1))                     # h = local scan + P * carry
    if not reverse:
        tail(h[K * C - 1] if K > 0 else h0)
    return h


def scan_autograd(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` one step at a time in plain operators (``scan="autograd"``)."""
    T = a.shape[0]
    h, out = h0, [h0] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h = a[t] * h + b[t]
        out[t] = h
    return torch.stack(out)


@torch.library.custom_op("rnnkit::linear_scan", mutates_args=())
def linear_scan_op(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """The scan as one operator, for ``torch.export``: the number of steps stays dynamic in the exported program
    (a loop over them would fix it), which runs :func:`scan_torch` where it is loaded (rnnkit imported)."""
    return scan_torch(a.contiguous(), b.contiguous(), h0, reverse)


@linear_scan_op.register_fake
def _(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    return b.new_empty(b.shape)


def _linear_scan_op_setup(ctx, inputs, output) -> None:
    a, _, h0, ctx.reverse = inputs
    ctx.save_for_backward(a, output, h0)


def _linear_scan_op_backward(ctx, dh: Tensor):
    a, h, h0 = ctx.saved_tensors
    da, db, dh0 = _scan_torch_backward(a.contiguous(), h, h0, dh.contiguous(), None, ctx.reverse)
    return da, db, dh0, None


linear_scan_op.register_autograd(_linear_scan_op_backward, setup_context=_linear_scan_op_setup)


def _traced_scan(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """``scan="autograd"``: plain operators step by step, or under ``torch.export`` with a dynamic number of steps
    the one operator (a fixed number, a step program's one, stays plain operators: ONNX exports those)."""
    if torch.compiler.is_exporting() and isinstance(a.shape[0], torch.SymInt):
        return linear_scan_op(a, b, h0, reverse)
    return scan_autograd(a, b, h0, reverse)


def _scan_torch_backward(a: Tensor, h: Tensor, h0: Tensor, dh: Tensor, dh_last: Tensor | None,
                         reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The reverse scan in torch operators: ``g_t = dh_t + a_{t+1} g_{t+1}``, then ``da``, ``db``, ``dh0``."""
    T = a.shape[0]
    g = torch.empty_like(h)
    last, rest = (T - 1, slice(0, T - 1)) if not reverse else (0, slice(1, T))
    g[last] = dh[last] if dh_last is None else dh[last] + dh_last
    if T > 1:
        # forward order: g_t = a_{t+1} g_{t+1} + dh_t for t < T-1 is a scan run backwards whose coefficient at
        # step t is a[t+1]: the view a[1:] (reverse order: a[:-1]), started from g at the last step.
        coef = a[1:] if not reverse else a[:-1]
        scan_torch(coef, dh[rest], g[last], reverse=not reverse, out=g[rest])
    da = torch.empty_like(a)
    if not reverse:
        torch.mul(g[0], h0, out=da[0])
        torch.mul(g[1:], h[:-1], out=da[1:])                   # da_t = g_t h_{t-1}
        dh0 = a[0] * g[0]
    else:
        torch.mul(g[T - 1], h0, out=da[T - 1])
        torch.mul(g[:-1], h[1:], out=da[:-1])
        dh0 = a[T - 1] * g[T - 1]
    return da, g, dh0


# --------------------------------------------------------------------------- autograd Functions

SECOND_ORDER = ("rnnkit: a second backward (create_graph=True, then differentiating the gradients) through the "
                "minimal layers' hand-written scan backward (scan 'compiled' or 'torch') is not supported; "
                "scan='autograd' (or 'log' with log_space=True) supports higher-order gradients")


class _NoSecondOrder(torch.autograd.Function):
    """The identity on a hand-written backward's gradients under ``create_graph=True``; differentiating them
    raises :data:`SECOND_ORDER`."""

    @staticmethod
    def forward(ctx, *grads: Tensor):
        return tuple(g.view_as(g) for g in grads)

    @staticmethod
    def backward(ctx, *_):
        raise RuntimeError(SECOND_ORDER)


def first_order_only(backward):
    """``once_differentiable`` with rnnkit's message: the gradients are computed without a graph, and under
    ``create_graph=True`` a second backward through them raises, naming the scans that have one."""
    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        with torch.no_grad():
            grads = backward(ctx, *grad_outputs)
        index = [i for i, g in enumerate(grads) if isinstance(g, Tensor)]
        if not torch.is_grad_enabled() or not index:
            return grads
        out = list(grads)
        for i, g in zip(index, _NoSecondOrder.apply(*(grads[i].detach().requires_grad_() for i in index))):
            out[i] = g
        return tuple(out)
    return wrapper


class LinearScan(torch.autograd.Function):
    """``h = scan(a, b, h0)`` with the reverse scan as its backward (contract: the module docstring)."""

    @staticmethod
    def forward(ctx, compiled: bool, reverse: bool, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        if compiled:
            h = _compiled_module().scan_forward(a, b, h0, reverse)
        else:
            h = scan_torch(a.contiguous(), b.contiguous(), h0, reverse)
        ctx.compiled, ctx.reverse = compiled, reverse
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @first_order_only
    def backward(ctx, dh: Tensor):
        a, h, h0 = ctx.saved_tensors
        if ctx.compiled:
            da, db, dh0 = _compiled_module().scan_backward(a, h, h0, dh, None, ctx.reverse)
        else:
            da, db, dh0 = _scan_torch_backward(a.contiguous(), h, h0, dh.contiguous(), None, ctx.reverse)
        return None, None, da, db, dh0


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, reverse: bool = False,
                scan: str = "auto") -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` over (T, N, H) from ``h0`` (N, H) (zeros if ``None``); returns ``h``
    (T, N, H). ``scan`` is ``"auto"``, ``"compiled"``, ``"torch"`` or ``"autograd"``. Differentiable in ``a``,
    ``b``, ``h0``."""
    if a.dim() != 3 or a.shape != b.shape:
        raise ValueError(f"a and b must be (T, N, H) of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if h0 is None:
        h0 = a.new_zeros(a.shape[1:])
    which = resolve_scan(scan, a)
    if which == "log":
        raise ValueError("linear_scan runs 'compiled', 'torch' or 'autograd'; the log-space scan needs log a, "
                         "log b (run_minimal with scan='log')")
    if which == "autograd":
        return _traced_scan(a, b, h0, reverse)
    return LinearScan.apply(which == "compiled", reverse, a, b, h0)


class MinimalScan(torch.autograd.Function):
    """A minimal layer's direction, compiled: ``G = x U`` (one matmul over all steps and gates), then the gates,
    the bias and the scan in one C++ pass; the backward is the reverse pass, in chunks of steps whose gate
    gradients are folded into ``dx = dG U^T`` and ``dU = dG^T x`` by one matmul each while they are in cache.
    Inputs ``x`` (T, N, I) contiguous, ``weight`` (G*H, I), ``bias`` (G*H,) or None, ``h0`` (N, H); outputs
    ``h`` (T, N, H) and ``h_n`` (N, H)."""

    @staticmethod
    def forward(ctx, cell: int, positive: bool, reverse: bool, mask: Tensor | None, x: Tensor, weight: Tensor,
                bias: Tensor | None, h0: Tensor):
        T, N, I = x.shape
        G = torch.mm(x.view(T * N, I), weight.t()).view(T, N, -1)      # x_t U for every step and gate
        out, h_last = _compiled_module().min_forward(cell, G, bias, h0, mask, reverse, positive)
        ctx.args = (cell, reverse, positive)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, G, bias, h0, out, mask)
        return out, h_last

    @staticmethod
    @first_order_only
    def backward(ctx, dY: Tensor | None, dh_last: Tensor | None):
        x, weight, G, bias, h0, out, mask = ctx.saved_tensors
        cell, reverse, positive = ctx.args
        need = ctx.needs_input_grad
        dx, dw, dbias, dh0 = _compiled_module().min_backward(cell, x, weight, G, bias, h0, out, mask, dY, dh_last,
                                                             reverse, positive, need[4], need[5], need[6])
        return None, None, None, None, dx, dw, dbias, dh0


# --------------------------------------------------------------------------- one direction of a minimal layer

def lengths_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(T, N)`` bool, ``True`` where step ``t`` is inside sequence ``n``."""
    return torch.arange(steps, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence reversed within its own length, the padding left at the end (its own inverse)."""
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    src = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)   # (T, N)
    return x.gather(0, src.unsqueeze(2).expand_as(x))


def _run_log(kind: str, G: Tensor, h0: Tensor, lengths: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor]:
    """Heinsen's log-space scan in torch operators (autograd does its backward)."""
    log_a, log_b = log_coefficients(kind, G)
    if reverse:
        log_a, log_b = ((v.flip(0) if lengths is None else reverse_padded(v, lengths)) for v in (log_a, log_b))
    if lengths is not None:
        valid = lengths_mask(lengths, G.shape[0]).unsqueeze(2)
        log_a = log_a.masked_fill(~valid, 0.0)                 # a = 1 past the end
        log_b = log_b.masked_fill(~valid, -math.inf)           # b = 0
    a_star = torch.cumsum(log_a, dim=0)                        # a*_t = Σ_{s<=t} log a_s
    h = torch.exp(a_star) * h0 + torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    h_n = h[-1]
    if reverse:
        h = h.flip(0) if lengths is None else reverse_padded(h, lengths)
    if lengths is not None:
        h = h * lengths_mask(lengths, G.shape[0]).unsqueeze(2)
    return h, h_n


def run_minimal(kind: str, x: Tensor, h0: Tensor, weight: Tensor, bias: Tensor | None, *,
                lengths: Tensor | None = None, reverse: bool = False, scan: str = "auto",
                positive: bool = False) -> tuple[Tensor, Tensor]:
    """One direction of one minimal layer over ``x`` (T, N, I): ``(output (T, N, H), h_n (N, H))``.

    The input products ``x U`` for all steps and gates are one matmul; ``scan`` picks the implementation
    (module docstring); ``positive`` is the log-space version's ``h~ = g(x U_h + b_h)``.
    """
    if kind not in GATES:
        raise ValueError(f"unknown minimal cell {kind!r}; expected one of {tuple(GATES)}")
    which = resolve_scan(scan, x)
    if which == "log" and not positive:
        raise ValueError("scan='log' takes logarithms of b_t = z_t * h~_t, which needs h~_t > 0: the log-space "
                         "version (log_space=True, h~ = g(x U_h + b_h)); use scan='compiled' or 'torch'")
    T = x.shape[0]
    if which == "compiled":
        mask = None if lengths is None else lengths_mask(lengths, T).contiguous()
        return MinimalScan.apply(_CELL_ID[kind], positive, reverse, mask, x.contiguous(), weight, bias, h0)
    G = F.linear(x, weight, bias)
    if which == "log":
        return _run_log(kind, G, h0, lengths, reverse)
    a, b = coefficients(kind, G, positive)
    if lengths is not None:
        valid = lengths_mask(lengths, T).unsqueeze(2)
        a = a.masked_fill(~valid, 1.0)                         # past the end: a = 1, b = 0 holds the state
        b = b.masked_fill(~valid, 0.0)
    h = _traced_scan(a, b, h0, reverse) if which == "autograd" else LinearScan.apply(False, reverse, a, b, h0)
    h_n = h[0] if reverse else h[-1]
    if lengths is not None:
        h = h * valid
    return h, h_n
