"""The compiled engine against the hand-written Python BPTT: values, every gradient, gradcheck, dtypes, fallbacks.

The extension is built once per machine (about a minute) into the cache and loaded from it afterwards; the
tests skip only when the machine has no C++ toolchain to build it with.
"""
from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.cells.spec import RECURRENCES, recurrence
from rnnkit.engine import build, fused, resolve_engine, run_bptt, run_direction
from rnnkit.engine.sequence import lengths_mask

MODES = tuple(r.kernel for r in RECURRENCES)          # the engine's kernel names
GATES = {r.kernel: r.gates for r in RECURRENCES}

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def problem(mode, T=6, N=4, input_size=5, H=3, bias=True, masked=False, dtype=F64, seed=0):
    """Inputs, states and weights requiring grad, and a (T, N, 1) mask with ragged lengths (or None)."""
    g = torch.Generator().manual_seed(seed)
    G = GATES[mode]

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    x, h0 = rand(T, N, input_size), rand(N, H, scale=0.5)
    c0 = rand(N, H, scale=0.5) if mode == "lstm" else None
    weights = (rand(G * H, input_size, scale=0.4), rand(G * H, H, scale=0.4),
               rand(G * H, scale=0.3) if bias else None, rand(G * H, scale=0.3) if bias else None)
    mask = None
    if masked:
        lengths = torch.randint(1, T + 1, (N,), generator=g)
        lengths[0] = T
        mask = lengths_mask(lengths, T)
    return x, h0, c0, weights, mask


def outputs_and_grads(runner, mode, x, h0, c0, weights, mask, **kw):
    """``(h_seq, h_T[, C_T])`` and the gradients of a loss touching all of them w.r.t. every leaf."""
    h_seq, h_T, c_T = runner(recurrence(mode), x, h0, c0, weights, mask, **kw)
    outs = [h_seq, h_T] + ([c_T] if mode == "lstm" else [])
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs)
    leaves = [t for t in (x, h0, c0, *weights) if t is not None]
    return outs, list(torch.autograd.grad(loss, leaves))


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


CASES = list(itertools.product(MODES, (True, False), (False, True)))


@pytest.mark.parametrize("mode,bias,masked", CASES,
                         ids=[f"{m}-{'bias' if b else 'nobias'}-{'mask' if k else 'full'}" for m, b, k in CASES])
def test_float64_matches_python_bptt(mode, bias, masked):
    args = problem(mode, bias=bias, masked=masked, seed=sum(map(ord, mode)) + 2 * bias + masked)
    want, want_g = outputs_and_grads(run_bptt, mode, *args)
    got, got_g = outputs_and_grads(fused.run_fused, mode, *args)
    assert len(got_g) == len(want_g)
    for name, a, b in zip(["h_seq", "h_T", "C_T"] + ["grad"] * 7, got + got_g, want + want_g):
        assert rel_err(a, b) < 1e-10, name


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("every", [1, 4, 100])
def test_checkpointed_backward_matches(mode, every):
    """Recomputing each window in the backward changes memory, not results."""
    args = problem(mode, T=9, masked=True, seed=7)
    want, want_g = outputs_and_grads(run_bptt, mode, *args)
    got, got_g = outputs_and_grads(fused.run_fused, mode, *args, checkpoint_every=every)
    for a, b in zip(got + got_g, want + want_g):
        assert rel_err(a, b) < 1e-10


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode):
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh), mask = problem(mode, T=4, N=3, input_size=3, H=2, masked=True, seed=3)
    inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh) if mode == "lstm" else (x, h0, w_ih, w_hh, b_ih, b_hh)

    def f(*t):
        if mode != "lstm":
            t = (t[0], t[1], None, *t[2:])
        h_seq, _, c_T = fused.run_fused(recurrence(mode), t[0], t[1], t[2], t[3:], mask)
        return (h_seq, c_T) if mode == "lstm" else h_seq

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7)


def f32(a):
    """The same problem in float32 (leaves requiring grad again; masks and None unchanged)."""
    if isinstance(a, tuple):
        return tuple(f32(w) for w in a)
    return a if a is None or a.dtype == torch.bool else a.detach().float().requires_grad_()


BACKENDS = {"auto": -1, "aten": 0, "mkl-packed": 1, "onednn": 2, "small": 3}
F32_SHAPES = {"threaded-rows": dict(T=5, N=64, input_size=24, H=131), "serial": dict(T=7, N=3, input_size=5, H=40)}
# The automatic choice has two profiles (csrc/gemm.h): every product to MKL (Intel CPUs), or the small kernel,
# oneDNN and MKL's packed GEMM by shape (elsewhere). Each is tested on every machine.
PROFILES = {"mkl-first": True, "by-shape": False}


@contextlib.contextmanager
def products(backend: int = -1, mkl_first: bool | None = None):
    """Force a product backend and, for the automatic choice, a profile; restore the defaults after."""
    ext = build.extension()
    default = ext._mkl_first()
    ext._set_backend(backend)
    if mkl_first is not None:
        ext._mkl_first(mkl_first)
    try:
        yield
    finally:
        ext._set_backend(-1)
        ext._mkl_first(default)


@pytest.mark.parametrize("backend,shape,profile",
                         [(b, "serial", None) for b in BACKENDS if b != "auto"]
                         + [("auto", s, p) for s in F32_SHAPES for p in PROFILES] + [("small", "threaded-rows", None)])
@pytest.mark.parametrize("mode", MODES)
def test_float32_as_accurate_as_the_python_loop(mode, backend, shape, profile):
    """float32 runs the vectorized approximate exp/tanh and, per product, ATen, MKL's packed GEMM, oneDNN or the
    small kernel.

    Against float64 truth, its error is within a small factor of the Python loop's own float32 error, whichever
    backend runs the recurrent products (forcing one this torch build lacks falls back to ATen).
    """
    args64 = problem(mode, masked=True, seed=11, **F32_SHAPES[shape])
    want, want_g = outputs_and_grads(run_bptt, mode, *args64)
    py, py_g = outputs_and_grads(run_bptt, mode, *map(f32, args64))
    with products(BACKENDS[backend], PROFILES.get(profile)):
        got, got_g = outputs_and_grads(fused.run_fused, mode, *map(f32, args64))
    for a, p, b in zip(got + got_g, py + py_g, want + want_g):
        assert a.dtype == torch.float32
        err, py_err = rel_err(a.double(), b), rel_err(p.double(), b)
        assert err < 5e-5 and err <= 3 * py_err + 1e-6, (err, py_err)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode", MODES)
def test_float32_large_products(mode, profile):
    """Products big enough for the by-shape choice to pick oneDNN (where the build has it)."""
    args64 = problem(mode, T=3, N=64, input_size=64, H=512, masked=True, seed=17)
    want, want_g = outputs_and_grads(run_bptt, mode, *args64)
    with products(mkl_first=PROFILES[profile]):
        got, got_g = outputs_and_grads(fused.run_fused, mode, *map(f32, args64))
    for a, b in zip(got + got_g, want + want_g):
        assert rel_err(a.double(), b) < 1e-4


def test_mkl_first_on_intel_cpus_only():
    """The automatic choice sends every product to MKL where the CPU is Intel's and torch has MKL (there MKL's
    kernels were the fastest at every shape measured; on AMD CPUs MKL takes a generic path): the default follows
    the vendor the kernel reports in /proc/cpuinfo."""
    info = Path("/proc/cpuinfo")
    if not info.exists() or "vendor_id" not in info.read_text():
        pytest.skip("no x86 /proc/cpuinfo on this machine to read the CPU's vendor from")
    intel = "vendor_id\t: GenuineIntel" in info.read_text()
    assert build.extension()._mkl_first() == (intel and torch.backends.mkl.is_available())


@pytest.mark.parametrize("m,k,n", [(3, 4, 5), (256, 128, 192)])          # ATen's product; oneDNN's from 2^22 flops
@pytest.mark.parametrize("transposed", [False, True])
def test_benchmark_product_binding(m, k, n, transposed):
    """``_gemm`` (engine_ab --floor times the step's products through it): out (+)= a @ b, float64 truth."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g).t()
    if not transposed:
        b = b.contiguous()
    out = torch.randn(m, n, generator=g)
    before = out.double().clone()
    build.extension()._gemm(out, a, b, True)
    torch.testing.assert_close(out.double(), before + a.double() @ b.double(), rtol=1e-4, atol=1e-4)
    build.extension()._gemm(out, a, b, False)
    torch.testing.assert_close(out.double(), a.double() @ b.double(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["lstm", "gru_reset_after"])
def test_inference_path_and_repeated_backward(mode):
    """No-grad runs in windows without saving; the saved tensors are never written (retain_graph works)."""
    x, h0, c0, weights, mask = problem(mode, T=11, N=5, masked=True, seed=5)
    with torch.no_grad():
        ref = run_bptt(recurrence(mode), x, h0, c0, weights, mask)
        fast = fused.run_fused(recurrence(mode), x, h0, c0, weights, mask)
    for a, b in zip(fast, ref):
        if b is not None:
            assert rel_err(a, b) < 1e-12
    h_seq, h_T, c_T = fused.run_fused(recurrence(mode), x, h0, c0, weights, mask)
    loss = h_seq.sum() + (c_T.sum() if c_T is not None else 0)       # expanded (stride-0) dY
    g1 = torch.autograd.grad(loss, weights[1], retain_graph=True)[0]
    g2 = torch.autograd.grad(loss, weights[1])[0]
    assert torch.equal(g1, g2)


def test_gradient_through_the_final_cell_only():
    x, h0, c0, weights, mask = problem("lstm", seed=9)
    a = torch.autograd.grad(fused.run_fused(recurrence("lstm"), x, h0, c0, weights, mask)[2].sum(), (x, c0))
    b = torch.autograd.grad(run_bptt(recurrence("lstm"), x, h0, c0, weights, mask)[2].sum(), (x, c0))
    for u, v in zip(a, b):
        assert rel_err(u, v) < 1e-10


@pytest.mark.parametrize("mode", MODES)
def test_through_run_direction_with_lengths_and_reverse(mode):
    x, h0, c0, weights, _ = problem(mode, T=7, N=3, seed=13)
    lengths = torch.tensor([7, 3, 5])
    runs = [run_direction(mode, x, h0, c0, weights, lengths=lengths, reverse=True, engine=e)
            for e in ("compiled", "python")]
    for a, b in zip(*runs):
        if b is not None:
            assert rel_err(a, b) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_dtype_it_lacks_is_named(dtype):
    x = torch.zeros(3, 2, 4, dtype=dtype)
    reason = fused.unavailable_reason(recurrence("lstm"), x)
    assert reason is not None and str(dtype).split(".")[-1] in reason
    assert not fused.warn_on_fallback(reason)                  # an input it never serves: auto falls back quietly
    with pytest.raises(RuntimeError, match=str(dtype).split(".")[-1]):
        resolve_engine("compiled", recurrence("lstm"), x)


def test_reasons():
    assert fused.unavailable_reason(recurrence("gru"), torch.zeros(2, 2, 2)) is None
    assert "cpu" in fused.unavailable_reason(recurrence("gru"), torch.zeros(2, 2, 2, device="meta")).lower()
    assert fused.warn_on_fallback(f"{build.BUILD_FAILED}: RuntimeError: no C++ compiler found")


def test_importing_rnnkit_builds_nothing():
    code = ("import rnnkit, rnnkit.engine; from rnnkit.engine import build; "
            "assert build.state == {'module': None, 'error': None}, build.state")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("backend", ["auto", "mkl-packed"])
@pytest.mark.parametrize("I,H,N", [(1, 1, 2), (1, 1, 40), (3, 1, 2), (1, 3, 1)])
@pytest.mark.parametrize("mode", MODES)
def test_size_one_dimensions(mode, I, H, N, backend):
    """A size of 1 leaves a stride free (hidden_size 1: W^T is (1, GH) with strides (1, 1)); MKL's packed GEMM
    refused such a leading dimension and the process died of SIGFPE (found through the CLI's one-step probe)."""
    args64 = problem(mode, T=4, N=N, input_size=I, H=H, seed=2)
    want, want_g = outputs_and_grads(run_bptt, mode, *args64)
    with products(BACKENDS[backend]):
        got, got_g = outputs_and_grads(fused.run_fused, mode, *map(f32, args64))
    for a, b in zip(got + got_g, want + want_g):
        assert rel_err(a.double(), b) < 1e-4
