"""The LSTM that projects its state (``proj_size``, Sak et al. 2014) in the compiled loop, its stepper and the
CUDA-graph engine, against the hand-written Python BPTT (itself checked against ``torch.nn.LSTM`` with copied
weights in tests/layers/test_torch_compat.py): values, every gradient (``weight_hr`` included), gradcheck,
checkpointed backward, the no-grad windows, float32 on each product backend."""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.cells.spec import recurrence
from rnnkit.engine import build, fused, graphed, resolve_engine, run_bptt
from rnnkit.engine.sequence import lengths_mask

F64 = torch.float64
LSTM = recurrence("lstm")


pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def problem(T=6, N=4, input_size=5, H=7, P=3, bias=True, masked=True, dtype=F64, seed=0):
    """x, h0 (N, P), c0 (N, H), weights (w_ih, w_hh (4H, P), b_ih, b_hh, w_hr (P, H)), a ragged mask or None."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    x, h0, c0 = rand(T, N, input_size), rand(N, P, scale=0.5), rand(N, H, scale=0.5)
    weights = (rand(4 * H, input_size, scale=0.4), rand(4 * H, P, scale=0.4),
               rand(4 * H, scale=0.3) if bias else None, rand(4 * H, scale=0.3) if bias else None,
               rand(P, H, scale=0.5))
    mask = None
    if masked:
        lengths = torch.randint(1, T + 1, (N,), generator=g)
        lengths[0] = T
        mask = lengths_mask(lengths, T)
    return x, h0, c0, weights, mask


def outputs_and_grads(runner, x, h0, c0, weights, mask, **kw):
    h_seq, h_T, c_T = runner(LSTM, x, h0, c0, weights, mask, **kw)
    outs = [h_seq, h_T, c_T]
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    leaves = [t for t in (x, h0, c0, *weights) if t is not None]
    return outs + list(torch.autograd.grad(loss, leaves))


def assert_close(got, want, tol):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
        assert err < tol, (i, err)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "mask"])
def test_float64_matches_python_bptt(bias, masked):
    args = problem(bias=bias, masked=masked, seed=2 * bias + masked)
    got = outputs_and_grads(fused.run_fused, *args)
    assert got[0].shape == (6, 4, 3) and got[-1].shape == (3, 7)          # h is P wide; dR is (P, H)
    assert_close(got, outputs_and_grads(run_bptt, *args), 1e-10)


@pytest.mark.parametrize("every", [1, 4, 100])
def test_checkpointed_backward_matches(every):
    args = problem(T=9, seed=7)
    assert_close(outputs_and_grads(fused.run_fused, *args, checkpoint_every=every),
                 outputs_and_grads(run_bptt, *args), 1e-10)


def test_gradcheck():
    x, h0, c0, weights, mask = problem(T=4, N=3, input_size=3, H=3, P=2, seed=3)

    def f(x, h0, c0, *w):
        h_seq, _, c_T = fused.run_fused(LSTM, x, h0, c0, w, mask)
        return h_seq, c_T

    assert torch.autograd.gradcheck(f, (x, h0, c0, *weights), eps=1e-6, atol=1e-7)


def test_no_grad_windows_and_repeated_backward():
    x, h0, c0, weights, mask = problem(T=11, N=5, seed=5)
    with torch.no_grad():
        assert_close(fused.run_fused(LSTM, x, h0, c0, weights, mask), run_bptt(LSTM, x, h0, c0, weights, mask), 1e-12)
    h_seq, _, c_T = fused.run_fused(LSTM, x, h0, c0, weights, mask)
    loss = h_seq.sum() + c_T.sum()                                         # expanded (stride-0) dY
    first = torch.autograd.grad(loss, weights[4], retain_graph=True)[0]
    assert torch.equal(first, torch.autograd.grad(loss, weights[4])[0])


def f32(args):
    x, h0, c0, weights, mask = args

    def as32(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().float().requires_grad_()

    return as32(x), as32(h0), as32(c0), tuple(as32(w) for w in weights), mask


@pytest.mark.parametrize("backend", [-1, 0, 1, 2, 3], ids=["auto", "aten", "mkl-packed", "onednn", "small"])
@pytest.mark.parametrize("shape", [dict(T=7, N=3, input_size=5, H=40, P=16),
                                   dict(T=5, N=64, input_size=24, H=131, P=37)],
                         ids=["serial", "threaded-rows"])
def test_float32_as_accurate_as_the_python_loop(backend, shape):
    """Against float64 truth, the compiled float32 loop errs no more than the Python float32 loop (x 4)."""
    args = problem(**shape, seed=11)
    truth = outputs_and_grads(run_bptt, *args)
    build.extension()._set_backend(backend)
    try:
        fast = outputs_and_grads(fused.run_fused, *f32(args))
    finally:
        build.extension()._set_backend(-1)
    slow = outputs_and_grads(run_bptt, *f32(args))
    for a, b, t in zip(fast, slow, truth):
        scale = t.abs().max().item()
        assert (a.double() - t).abs().max().item() <= 4 * (b.double() - t).abs().max().item() + 1e-6 * scale


def test_auto_resolves_to_the_compiled_loop():
    assert resolve_engine("auto", LSTM, torch.zeros(2, 2, 2), projected=True) == "compiled"
    assert resolve_engine("compiled", LSTM, torch.zeros(2, 2, 2), projected=True) == "compiled"


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_compiled_step_equals_the_cell_equations(dtype):
    """Generation: the compiled stepper (h (L, N, P), C (L, N, H)) against the Python step, several steps."""
    torch.manual_seed(4)
    layer = rnnkit.LSTM(5, 9, 2, proj_size=4, dtype=dtype).eval()
    python = rnnkit.LSTM(5, 9, 2, proj_size=4, dtype=dtype, engine="python").eval()
    python.load_state_dict(layer.state_dict())
    xs = torch.randn(4, 3, 5, dtype=dtype)
    state_a = state_b = None
    with torch.no_grad():
        for x in xs:
            out_a, state_a = layer.step(x, state_a)
            out_b, state_b = python.step(x, state_b)
        whole, (h, c) = layer(xs)
    assert "_cache_stepper" in layer.__dict__                              # the compiled stepper ran
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip((out_a, *state_a), (out_b, *state_b)):
        torch.testing.assert_close(a, b, **tol)
    torch.testing.assert_close(out_a, whole[-1], **tol)
    assert state_a[0].shape == (2, 3, 4) and state_a[1].shape == (2, 3, 9)


def test_cuda_graph_engine_with_projection():
    """The CUDA-graph engine replays the Python loop with ``weight_hr`` (EagerGraph stands in off the GPU)."""
    graphed._entries.clear()
    try:
        args = problem(seed=17)
        assert_close(outputs_and_grads(graphed.run_graphed, *args), outputs_and_grads(run_bptt, *args), 1e-12)
        with torch.no_grad():
            assert_close(graphed.run_graphed(LSTM, *args[:4], args[4]), run_bptt(LSTM, *args[:4], args[4]), 1e-12)
    finally:
        graphed._entries.clear()
