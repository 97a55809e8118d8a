"""Recurrent dropout and zoneout in the compiled loop, float32, at sizes where rows are split over threads and
each product backend runs: as accurate as the Python float32 loop against float64 truth. (float64 against the
NumPy reference with the same masks: tests/reference/test_regularised_reference.py; gradcheck and the engines
against the autograd twin: tests/layers/test_regularisers.py.)"""
from __future__ import annotations

import pytest
import torch

from rnnkit.cells.extras import Regularisation
from rnnkit.cells.spec import RECURRENCES, recurrence
from rnnkit.engine import build, fused, run_bptt
from rnnkit.engine.sequence import lengths_mask

MODES = tuple(r.kernel for r in RECURRENCES)


pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def problem(mode, dtype, T=6, N=48, input_size=20, H=67, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = recurrence(mode).gates

    def rand(*s: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*s, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_()

    x, h0 = rand(T, N, input_size), rand(N, H, scale=0.5)
    c0 = rand(N, H, scale=0.5) if mode == "lstm" else None
    weights = (rand(G * H, input_size, scale=0.3), rand(G * H, H, scale=0.3),
               rand(G * H, scale=0.2), rand(G * H, scale=0.2))

    def keep(*s: int, p: float) -> torch.Tensor:
        return (torch.rand(*s, generator=g) < p).to(dtype)

    reg = Regularisation(keep(N, H, p=0.7) / 0.7, keep(T, N, H, p=0.25),
                         keep(T, N, H, p=0.3) if c0 is not None else None)
    lengths = torch.randint(1, T + 1, (N,), generator=g)
    return x, h0, c0, weights, lengths_mask(lengths, T), reg


def run(runner, args, **kw):
    x, h0, c0, weights, mask, reg = args
    h_seq, h_T, c_T = runner(recurrence(kw.pop("mode")), x, h0, c0, weights, mask, reg=reg, **kw)
    outs = [h_seq, h_T] + ([c_T] if c_T is not None else [])
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    return outs + list(torch.autograd.grad(loss, [t for t in (x, h0, c0, *weights) if t is not None]))


def converted(args, dtype: torch.dtype = torch.float32):
    """``problem``'s arguments in ``dtype``: the inputs, weights and layer norm's parameters (if any) as fresh
    leaves that require grad, the masks as they are but in ``dtype``."""
    x, h0, c0, weights, mask, reg = args

    def leaf(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(dtype).requires_grad_()

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dtype)

    ln = None if reg.ln is None else tuple(leaf(t) for t in reg.ln)
    return (leaf(x), leaf(h0), leaf(c0), tuple(leaf(w) for w in weights), mask,
            Regularisation(cast(reg.h_mask), cast(reg.zoneout_h), cast(reg.zoneout_c), ln))


@pytest.mark.parametrize("backend", [-1, 0, 1, 2, 3], ids=["auto", "aten", "mkl-packed", "onednn", "small"])
@pytest.mark.parametrize("mode", MODES)
def test_float32_as_accurate_as_the_python_loop(mode, backend):
    args = problem(mode, torch.float64, seed=MODES.index(mode))
    truth = run(run_bptt, args, mode=mode)
    build.extension()._set_backend(backend)
    try:
        fast = run(fused.run_fused, converted(args), mode=mode)
    finally:
        build.extension()._set_backend(-1)
    slow = run(run_bptt, converted(args), mode=mode)
    for a, b, t in zip(fast, slow, truth):
        scale = t.abs().max().item()
        assert (a.double() - t).abs().max().item() <= 4 * (b.double() - t).abs().max().item() + 1e-6 * scale


def with_layer_norm(args, seed=0):
    """``args`` with layer norm added to its masks: gains and biases away from 1 and 0, requiring gradients."""
    x, h0, c0, weights, mask, reg = args
    g = torch.Generator().manual_seed(seed)
    GH, H = weights[1].shape[0], weights[1].shape[1]

    def param(n: int, centre: float) -> torch.Tensor:
        return (centre + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)).to(x.dtype).requires_grad_()

    ln = (param(GH, 1.0), param(GH, 0.0), param(GH, 1.0), param(GH, 0.0),
          *((param(H, 1.0), param(H, 0.0)) if c0 is not None else (None, None)))
    return x, h0, c0, weights, mask, Regularisation(reg.h_mask, reg.zoneout_h, reg.zoneout_c, ln)


@pytest.mark.parametrize("backend", [-1, 0, 1, 2, 3], ids=["auto", "aten", "mkl-packed", "onednn", "small"])
@pytest.mark.parametrize("mode", MODES)
def test_layer_norm_float32_as_accurate_as_the_autograd_loop(mode, backend):
    """Layer norm, recurrent dropout and zoneout together in the compiled loop, float32, at sizes where rows are
    split over threads: outputs and every gradient (the layer norm's too) as close to float64 truth as the autograd
    loop's float32."""
    from rnnkit.engine import run_reference
    args = with_layer_norm(problem(mode, torch.float64, seed=MODES.index(mode)), seed=MODES.index(mode))

    def go(runner, a):
        x, h0, c0, weights, mask, reg = a
        h_seq, h_T, c_T = runner(recurrence(mode), x, h0, c0, weights, mask, reg=reg)
        outs = [h_seq, h_T] + ([c_T] if c_T is not None else [])
        loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
        learned = [t for t in (x, h0, c0, *weights, *reg.ln) if t is not None]
        return outs + list(torch.autograd.grad(loss, learned))

    truth = go(run_reference, args)
    build.extension()._set_backend(backend)
    try:
        fast = go(fused.run_fused, converted(args))
    finally:
        build.extension()._set_backend(-1)
    slow = go(run_reference, converted(args))
    for a, b, t in zip(fast, slow, truth):
        scale = t.abs().max().item()
        assert (a.double() - t).abs().max().item() <= 4 * (b.double() - t).abs().max().item() + 1e-6 * scale


@pytest.mark.parametrize("mode", MODES)
def test_layer_norm_gradients_have_the_same_bits_with_one_or_two_threads(mode):
    """The input LN's backward sums its gains' and biases' gradients per sequence, in step order, and adds the
    sequences in order (csrc/step_common.h, ln_input_backward; layer_norm_grads.h, fold_input_layer_norm): the
    thread count can't change a bit of them, nor of any other gradient. (With 40 sequences the steps' rows split
    over two threads, but the Elman RNN's. With few, the matmuls that fold a chunk's gradients can round
    differently on one thread and two: the test below compares the few-sequence path at two threads instead.)"""
    args = with_layer_norm(problem(mode, torch.float64, T=7, N=40, seed=3), seed=3)
    x, h0, c0, weights, mask, reg = converted(args)
    learned = [t for t in (x, h0, c0, *weights, *reg.ln) if t is not None]
    threads = torch.get_num_threads()
    grads = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            h_seq = fused.run_fused(recurrence(mode), x, h0, c0, weights, mask, reg=reg)[0]
            grads.append(torch.autograd.grad((h_seq * torch.linspace(-1, 1, h_seq.numel()).view_as(h_seq)).sum(),
                                             learned))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*grads):
        assert torch.equal(one, two)


@pytest.mark.parametrize("N", [300, 3])
@pytest.mark.parametrize("kept", ["none", "one chunk", "all"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", MODES)
def test_layer_norm_backward_rebuilds_the_forwards_gates_bit_for_bit(mode, dtype, kept, N, monkeypatch):
    """Under layer norm training keeps no gates (csrc/fused.h): the backward recomputes x_t U per chunk, or takes
    LN(x_t U) where the forward kept it (its first `kept` steps, ops.kept_input_steps), and rebuilds the gates from
    the saved LN(h W) (rebuild_gates). Checkpointing with windows the size of those chunks recomputes the same
    gates by rerunning the forward steps instead, so every output and gradient must be equal to the bit: here with
    two chunks at 300 sequences (N * T over the engine's 2048 rows a chunk; one at 3), lengths, recurrent dropout
    and zoneout, and LN(x_t U) kept for no step, the first chunk's or all (the chunks stay the checkpoint windows;
    the default share would move their boundary, and with it the order of dW's sums). With two threads and 300
    sequences the rows split over threads, so the steps normalise x_t U and rebuild the gates row by row; with 3
    the rows run on one thread and the other rebuilds the next step's (side_rows); with one thread, a pass over
    each window's rows does (input_projection): the same gates, so the same bits in all the rows give."""
    from rnnkit.engine import ops
    T = 8 if N == 300 else 700
    K = 2048 // N                              # engine.cpp, chunk_steps: 6 steps, then 2 (682, then 18 at N = 3)
    steps_kept = {"none": 0, "one chunk": K, "all": T}[kept]
    monkeypatch.setattr(ops, "kept_input_steps", lambda *_: steps_kept)
    args = with_layer_norm(problem(mode, torch.float64, T=T, N=N, input_size=9, H=24, seed=5), seed=5)
    x, h0, c0, weights, mask, reg = converted(args, dtype)
    learned = [t for t in (x, h0, c0, *weights, *reg.ln) if t is not None]

    def go(checkpoint_every):
        h_seq, h_T, c_T = fused.run_fused(recurrence(mode), x, h0, c0, weights, mask, checkpoint_every, reg=reg)
        outs = [h_seq, h_T] + ([c_T] if c_T is not None else [])
        loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=dtype).view_as(o)).sum() for o in outs)
        return outs + list(torch.autograd.grad(loss, learned))

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        saved, recomputed = go(None), go(K)
        torch.set_num_threads(1)
        one_thread, one_thread_recomputed = go(None), go(K)
    finally:
        torch.set_num_threads(threads)
    for a, b in [*zip(saved, recomputed), *zip(one_thread, one_thread_recomputed)]:
        assert torch.equal(a, b)
    # One thread against two: dU and dW are each one product over all the chunk's rows, which MKL and oneDNN may
    # split over threads on some CPUs (the sum's order: Intel Xeon with AVX-512 does, AMD EPYC didn't); what the
    # rows feed them (the outputs, dx, dh0, the biases' and layer norm's sums) must keep every bit.
    products = {len(saved) - len(learned) + i for i, t in enumerate(learned) if t is weights[0] or t is weights[1]}
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    for i, (a, c) in enumerate(zip(saved, one_thread)):
        if i in products:
            torch.testing.assert_close(c, a, rtol=tol, atol=tol * a.abs().max().item())
        else:
            assert torch.equal(a, c), i
