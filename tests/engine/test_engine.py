"""The sequence engine: hand-written BPTT ("python") and its autograd twin ("reference") over whole sequences.

Checked against float64 gradcheck, the independent NumPy oracle (``rnnkit.reference``), each other, and a
hand loop over the cell modules; plus lengths, reversal, and the engine names.
"""
from __future__ import annotations

import numpy as np
import os

import pytest
import torch

import rnnkit.reference as oracle
from rnnkit import GRUCell, LSTMCell, RNNCell
from rnnkit.cells.spec import RECURRENCES
from rnnkit.engine import ENGINES, build, run_direction

MODES = tuple(r.kernel for r in RECURRENCES)          # the engine's kernel names
GATES = {r.kernel: r.gates for r in RECURRENCES}

ENGINES_TESTED = ("python", "autograd")
F64 = torch.float64
LENGTHS = [4, 1, 3]            # T = 4, N = 3: one full, one of a single step, one in between


def make_problem(mode: str, T: int = 4, N: int = 3, input_size: int = 3, H: int = 2, bias: bool = True,
                 dtype=F64, seed: int = 0, scale: float = 0.6):
    """x (T, N, I), h0, c0 (LSTM only, else None) and the weights tuple, all leaves requiring grad."""
    g = torch.Generator().manual_seed(seed)
    G = GATES[mode]

    def rnd(*shape: int, s: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, dtype=dtype) * s).requires_grad_()

    x = rnd(T, N, input_size)
    h0 = rnd(N, H, s=0.5)
    c0 = rnd(N, H, s=0.5) if mode == "lstm" else None
    weights = (rnd(G * H, input_size, s=scale), rnd(G * H, H, s=scale),
               rnd(G * H, s=scale) if bias else None, rnd(G * H, s=scale) if bias else None)
    return x, h0, c0, weights


def leaves(x, h0, c0, weights):
    """The tensors to differentiate, with their oracle names."""
    named = [("x", x), ("h0", h0), ("c0", c0), ("weight_ih", weights[0]), ("weight_hh", weights[1]),
             ("bias_ih", weights[2]), ("bias_hh", weights[3])]
    return [(n, t) for n, t in named if t is not None]


def upstream(out, h_n, c_n, seed: int = 11):
    g = torch.Generator().manual_seed(seed)
    d_out = torch.randn(out.shape, generator=g, dtype=out.dtype)
    d_h = torch.randn(h_n.shape, generator=g, dtype=out.dtype)
    d_c = None if c_n is None else torch.randn(c_n.shape, generator=g, dtype=out.dtype)
    return d_out, d_h, d_c


def loss_of(out, h_n, c_n, d_out, d_h, d_c):
    loss = (out * d_out).sum() + (h_n * d_h).sum()
    return loss if c_n is None else loss + (c_n * d_c).sum()


def run_and_grad(mode, engine, x, h0, c0, weights, lengths=None, reverse=False, seed=11):
    """Forward, then the gradients of ``L = Σ d_out·out + Σ d_h·h_n (+ Σ d_c·c_n)`` with random d's."""
    out, h_n, c_n = run_direction(mode, x, h0, c0, weights, lengths=lengths, reverse=reverse, engine=engine)
    d = upstream(out, h_n, c_n, seed)
    named = leaves(x, h0, c0, weights)
    grads = torch.autograd.grad(loss_of(out, h_n, c_n, *d), [t for _, t in named])
    return (out, h_n, c_n), d, {n: g for (n, _), g in zip(named, grads)}


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), np.abs(a).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def np_(t):
    return None if t is None else t.detach().numpy()


# --------------------------------------------------------------------------- gradcheck

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode, engine, with_lengths, reverse, bias):
    x, h0, c0, weights = make_problem(mode, T=4, N=3, input_size=2, H=2, bias=bias, seed=MODES.index(mode))
    lengths = torch.tensor(LENGTHS) if with_lengths else None
    names = [n for n, _ in leaves(x, h0, c0, weights)]
    if mode == "rnn_relu":     # both branches of relu occur (dead units and live ones) within the sequences
        out, _, _ = run_direction(mode, x, h0, None, weights, lengths=lengths, reverse=reverse, engine=engine)
        valid = out if lengths is None else out[(torch.arange(4)[:, None] < lengths[None]).nonzero(as_tuple=True)]
        assert (valid == 0).any() and (valid > 0).any()

    def f(*tensors):
        d = dict(zip(names, tensors))
        w = (d["weight_ih"], d["weight_hh"], d.get("bias_ih"), d.get("bias_hh"))
        out, h_n, c_n = run_direction(mode, d["x"], d["h0"], d.get("c0"), w, lengths=lengths,
                                      reverse=reverse, engine=engine)
        return (out, h_n) if c_n is None else (out, h_n, c_n)

    assert torch.autograd.gradcheck(f, [t for _, t in leaves(x, h0, c0, weights)], eps=1e-6, atol=1e-7,
                                    rtol=1e-5)


# --------------------------------------------------------------------------- vs the NumPy oracle

def oracle_params(weights):
    return dict(zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (np_(w) for w in weights)))


def oracle_run(mode, x, h0, c0, params, d_out, d_h, d_c):
    """The oracle's forward and backward for one batch of full-length sequences."""
    state0 = (h0, c0) if mode == "lstm" else h0
    outputs, final, cache = oracle.forward(mode, x, state0, params)
    grads = oracle.backward(cache, d_out, (d_h, d_c) if mode == "lstm" else d_h)
    if mode != "lstm":
        final = (final, None)
    return outputs, final, grads


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_engine_matches_numpy_oracle(mode, engine, reverse, bias):
    x, h0, c0, weights = make_problem(mode, T=5, N=3, input_size=4, H=3, bias=bias, seed=1 + MODES.index(mode))
    (out, h_n, c_n), (d_out, d_h, d_c), grads = run_and_grad(mode, engine, x, h0, c0, weights, reverse=reverse)
    flip = (lambda a: a[::-1]) if reverse else (lambda a: a)
    want_out, (want_h, want_c), want = oracle_run(mode, flip(np_(x)), np_(h0), np_(c0), oracle_params(weights),
                                                  flip(np_(d_out)), np_(d_h), np_(d_c))
    assert rel_err(np_(out), flip(want_out)) < 1e-8
    assert rel_err(np_(h_n), want_h) < 1e-8
    if mode == "lstm":
        assert rel_err(np_(c_n), want_c) < 1e-8
    want["x"] = flip(want["x"])
    assert set(grads) == set(want)
    for name, g in grads.items():
        assert rel_err(np_(g), want[name]) < 1e-8, f"{mode} {engine} d{name}"
        assert np.abs(want[name]).max() > 1e-3, name        # the comparison is not between two zeros


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_engine_with_lengths_matches_oracle_per_sequence(mode, engine, reverse):
    """Each sequence, cut to its length, run alone through the oracle; the weight gradients add up."""
    lengths = [5, 2, 1, 4]
    x, h0, c0, weights = make_problem(mode, T=5, N=4, input_size=3, H=3, seed=7 + MODES.index(mode))
    (out, h_n, c_n), (d_out, d_h, d_c), grads = run_and_grad(mode, engine, x, h0, c0, weights,
                                                             lengths=torch.tensor(lengths), reverse=reverse)
    params = oracle_params(weights)
    weight_grads = {k: np.zeros(v.shape) for k, v in params.items() if v is not None}
    flip = (lambda a: a[::-1]) if reverse else (lambda a: a)
    for n, L in enumerate(lengths):
        sl = np.s_[:L, n:n + 1]
        want_out, (want_h, want_c), want = oracle_run(
            mode, flip(np_(x)[sl]), np_(h0)[n:n + 1], None if c0 is None else np_(c0)[n:n + 1], params,
            flip(np_(d_out)[sl]), np_(d_h)[n:n + 1], None if d_c is None else np_(d_c)[n:n + 1])
        assert rel_err(np_(out)[sl], flip(want_out)) < 1e-8
        assert np.all(np_(out)[L:, n] == 0.0)
        assert rel_err(np_(h_n)[n:n + 1], want_h) < 1e-8
        if mode == "lstm":
            assert rel_err(np_(c_n)[n:n + 1], want_c) < 1e-8
        assert rel_err(np_(grads["x"])[sl], flip(want["x"])) < 1e-8
        assert np.all(np_(grads["x"])[L:, n] == 0.0)
        assert rel_err(np_(grads["h0"])[n:n + 1], want["h0"]) < 1e-8
        if mode == "lstm":
            assert rel_err(np_(grads["c0"])[n:n + 1], want["c0"]) < 1e-8
        for k in weight_grads:
            weight_grads[k] += want[k]
    for k, v in weight_grads.items():
        assert rel_err(np_(grads[k]), v) < 1e-8, f"{mode} {engine} d{k}"


# --------------------------------------------------------------------------- the two engines agree

@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ["plain", "lengths", "reverse", "lengths_reverse", "nobias_lengths_reverse"])
@pytest.mark.parametrize("mode", MODES)
def test_python_engine_agrees_with_reference_engine(mode, case, dtype):
    lengths = torch.tensor([3, 6, 1, 5]) if "lengths" in case else None
    reverse = "reverse" in case
    bias = "nobias" not in case
    x, h0, c0, weights = make_problem(mode, T=6, N=4, input_size=3, H=4, bias=bias, dtype=dtype, seed=3)
    a, _, ga = run_and_grad(mode, "python", x, h0, c0, weights, lengths=lengths, reverse=reverse)
    b, _, gb = run_and_grad(mode, "autograd", x, h0, c0, weights, lengths=lengths, reverse=reverse)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == F64 else dict(rtol=1e-4, atol=1e-5)
    for u, v in zip(a, b):
        if u is None:
            assert v is None
        else:
            assert u.dtype == dtype
            torch.testing.assert_close(u, v, **tol)
    assert set(ga) == set(gb)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], **tol, msg=name)


@pytest.mark.parametrize("mode,which", [(m, w) for m in MODES for w in ("out", "h_n", "c_n")
                                        if w != "c_n" or m == "lstm"])
def test_gradient_of_each_result_alone(mode, which):
    """Only one of the results feeds the loss (the others get no gradient at all, not zeros)."""
    lengths = torch.tensor([4, 2, 3])
    x, h0, c0, weights = make_problem(mode, seed=41)
    named = leaves(x, h0, c0, weights)
    grads = {}
    for engine in ENGINES_TESTED:
        out, h_n, c_n = run_direction(mode, x, h0, c0, weights, lengths=lengths, reverse=True, engine=engine)
        target = {"out": out, "h_n": h_n, "c_n": c_n}[which]
        grads[engine] = torch.autograd.grad((target * target).sum(), [t for _, t in named], allow_unused=True)
    for (name, _), a, b in zip(named, grads["python"], grads["autograd"]):
        if b is None:
            assert a is None or torch.equal(a, torch.zeros_like(a)), name
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{which} d{name}")
            assert a.abs().max() > 0, name


@pytest.mark.parametrize("engine", ENGINES_TESTED)
def test_auto_engine_equals_an_explicit_engine(engine):
    x, h0, c0, weights = make_problem("lstm", seed=4)
    auto = run_direction("lstm", x, h0, c0, weights, engine="auto")
    expl = run_direction("lstm", x, h0, c0, weights, engine=engine)
    for u, v in zip(auto, expl):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- hand loop over the cell modules

def cell_for(mode: str, input_size: int, H: int, weights):
    if mode == "lstm":
        cell = LSTMCell(input_size, H, dtype=F64)
    elif mode.startswith("rnn"):
        cell = RNNCell(input_size, H, nonlinearity=mode.split("_")[1], dtype=F64)
    else:
        cell = GRUCell(input_size, H, reset_after=mode == "gru_reset_after", dtype=F64)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), weights):
            p.copy_(w)
    return cell


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_runner_equals_hand_loop_over_the_cell(mode, engine, reverse):
    T, N, input_size, H = 5, 3, 3, 4
    lengths = [2, 5, 3]
    x, h0, c0, weights = make_problem(mode, T=T, N=N, input_size=input_size, H=H, seed=9)
    out, h_n, c_n = run_direction(mode, x, h0, c0, weights, lengths=torch.tensor(lengths), reverse=reverse,
                                  engine=engine)
    cell = cell_for(mode, input_size, H, weights)
    with torch.no_grad():
        for n, L in enumerate(lengths):
            state = (h0[n:n + 1], c0[n:n + 1]) if mode == "lstm" else h0[n:n + 1]
            want = torch.zeros(T, H, dtype=F64)
            for t in (reversed(range(L)) if reverse else range(L)):
                state = cell(x[t, n:n + 1], state)
                want[t] = state[0][0] if mode == "lstm" else state[0]
            torch.testing.assert_close(out[:, n], want, rtol=1e-12, atol=1e-13)
            torch.testing.assert_close(h_n[n], state[0][0] if mode == "lstm" else state[0], rtol=1e-12,
                                       atol=1e-13)
            if mode == "lstm":
                torch.testing.assert_close(c_n[n], state[1][0], rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- lengths: padding semantics

@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_padding_is_zero_and_final_state_is_last_valid(mode, engine, reverse):
    lengths = [2, 5, 1]
    x, h0, c0, weights = make_problem(mode, T=5, N=3, seed=13)
    out, h_n, c_n = run_direction(mode, x, h0, c0, weights, lengths=torch.tensor(lengths), reverse=reverse,
                                  engine=engine)
    for n, L in enumerate(lengths):
        assert torch.equal(out[L:, n], torch.zeros_like(out[L:, n]))
        if mode != "rnn_relu":                     # (relu's dead units are legitimately 0)
            assert (out[:L, n] != 0).all()
        last = 0 if reverse else L - 1              # the reverse direction ends at the first step
        assert torch.equal(h_n[n], out[last, n])
    # the state past the end is held, not run on padding: same as running the short sequence alone
    n, L = 0, lengths[0]
    alone = run_direction(mode, x[:L, n:n + 1], h0[n:n + 1], None if c0 is None else c0[n:n + 1], weights,
                          reverse=reverse, engine=engine)
    torch.testing.assert_close(h_n[n:n + 1], alone[1], rtol=1e-13, atol=1e-14)
    if mode == "lstm":
        torch.testing.assert_close(c_n[n:n + 1], alone[2], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_no_gradient_and_no_influence_past_the_end(mode, engine, reverse):
    lengths = torch.tensor([3, 5, 1])
    x, h0, c0, weights = make_problem(mode, T=5, N=3, seed=17)
    _, _, grads = run_and_grad(mode, engine, x, h0, c0, weights, lengths=lengths, reverse=reverse)
    for n, L in enumerate(lengths.tolist()):
        assert torch.equal(grads["x"][L:, n], torch.zeros_like(grads["x"][L:, n]))
        if mode != "rnn_relu":                     # (a step whose units are all dead has no gradient)
            assert (grads["x"][:L, n].abs().sum(1) > 0).all()
    # whatever sits in the padding changes nothing
    noisy = x.detach().clone()
    for n, L in enumerate(lengths.tolist()):
        noisy[L:, n] = 100 * torch.randn(5 - L, x.shape[2], dtype=F64)
    a = run_direction(mode, x, h0, c0, weights, lengths=lengths, reverse=reverse, engine=engine)
    b = run_direction(mode, noisy, h0, c0, weights, lengths=lengths, reverse=reverse, engine=engine)
    for u, v in zip(a, b):
        if u is not None:
            assert torch.equal(u, v)


@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_full_lengths_equal_no_lengths(mode, engine):
    x, h0, c0, weights = make_problem(mode, T=4, N=3, seed=19)
    a = run_direction(mode, x, h0, c0, weights, engine=engine)
    b = run_direction(mode, x, h0, c0, weights, lengths=torch.tensor([4, 4, 4]), engine=engine)
    for u, v in zip(a, b):
        if u is not None:
            torch.testing.assert_close(u, v, rtol=0, atol=0)


@pytest.mark.parametrize("engine", ENGINES_TESTED)
@pytest.mark.parametrize("mode", MODES)
def test_reverse_equals_forward_on_flipped_input(mode, engine):
    x, h0, c0, weights = make_problem(mode, T=4, N=2, seed=23)
    out_r, h_r, c_r = run_direction(mode, x, h0, c0, weights, reverse=True, engine=engine)
    out_f, h_f, c_f = run_direction(mode, x.flip(0), h0, c0, weights, engine=engine)
    torch.testing.assert_close(out_r, out_f.flip(0), rtol=0, atol=0)
    torch.testing.assert_close(h_r, h_f, rtol=0, atol=0)
    assert torch.equal(h_r, out_r[0])


@pytest.mark.parametrize("engine", ENGINES_TESTED)
def test_inputs_are_not_written_to(engine):
    x, h0, c0, weights = make_problem("lstm", seed=29)
    before = [t.detach().clone() for _, t in leaves(x, h0, c0, weights)]
    run_and_grad("lstm", engine, x, h0, c0, weights, lengths=torch.tensor([4, 2, 3]), reverse=True)
    for (name, t), b in zip(leaves(x, h0, c0, weights), before):
        assert torch.equal(t.detach(), b), name


@pytest.mark.parametrize("mode", MODES)
def test_non_contiguous_input(mode):
    x, h0, c0, weights = make_problem(mode, T=4, N=3, seed=31)
    xt = x.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()   # (T, N, I) strided N-major
    assert not xt.is_contiguous()
    a, _, ga = run_and_grad(mode, "python", xt, h0, c0, weights)
    b, _, gb = run_and_grad(mode, "autograd", x, h0, c0, weights)
    for u, v in zip(a, b):
        if u is not None:
            torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-13)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-10, atol=1e-12, msg=name)


# --------------------------------------------------------------------------- the compiled engine and names

def _compiler_present() -> bool:
    import shutil
    from torch.utils.cpp_extension import is_ninja_available
    return shutil.which(os.environ.get("CXX", "c++")) is not None and is_ninja_available()


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("mode", MODES)
def test_compiled_engine_agrees_with_python(mode, dtype):
    """Where a compiler is present the compiled engine must build and match the Python loop (no silent pass)."""
    if not _compiler_present():
        pytest.skip("no C++ compiler or ninja: the compiled engine cannot be built here")
    lengths = torch.tensor([4, 2, 3])
    x, h0, c0, weights = make_problem(mode, dtype=dtype, seed=37)
    compiled = run_and_grad(mode, "compiled", x, h0, c0, weights, lengths=lengths, reverse=True)
    python = run_and_grad(mode, "python", x, h0, c0, weights, lengths=lengths, reverse=True)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == F64 else dict(rtol=1e-4, atol=1e-5)
    for u, v in zip(compiled[0], python[0]):
        if u is None:
            assert v is None
        else:
            torch.testing.assert_close(u, v, **tol)
    for name in python[2]:
        torch.testing.assert_close(compiled[2][name], python[2][name], **tol, msg=name)


def test_a_failed_build_is_named_and_auto_falls_back(monkeypatch):
    """A broken build: asking for ``compiled`` says why; ``auto`` warns once and gives the Python loop's numbers."""
    from rnnkit.engine import resolve
    monkeypatch.setitem(build.state, "module", None)
    monkeypatch.setitem(build.state, "error", "CalledProcessError: c++: fatal error: no input files")
    monkeypatch.setattr(resolve, "_warned", set())
    x, h0, c0, weights = make_problem("lstm", seed=3)
    with pytest.raises(RuntimeError, match=r"engine='compiled' cannot run here: the C\+\+ extension could not "
                                           r"be built: CalledProcessError: c\+\+: fatal error"):
        run_direction("lstm", x, h0, c0, weights, engine="compiled")
    with pytest.warns(RuntimeWarning, match="compiled engine is unavailable"):
        auto = run_direction("lstm", x, h0, c0, weights, engine="auto")
    python = run_direction("lstm", x, h0, c0, weights, engine="python")
    for u, v in zip(auto, python):
        assert torch.equal(u, v)


def test_unknown_cell_lists_the_valid_ones():
    x, h0, c0, weights = make_problem("lstm")
    with pytest.raises(ValueError, match="unknown cell 'lstmx'") as info:
        run_direction("lstmx", x, h0, c0, weights, engine="python")
    for name in ("lstm", "gru", "gru-torch", "rnn", "rnn-relu"):
        assert name in str(info.value)
    assert set(MODES) == {"rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_after"}


def test_unknown_engine_lists_the_valid_ones():
    x, h0, c0, weights = make_problem("lstm")
    with pytest.raises(ValueError, match="engine must be one of .* got 'cuda'") as info:
        run_direction("lstm", x, h0, c0, weights, engine="cuda")
    for engine in ("auto", "compiled", "cuda-graph", "python", "autograd", "torch"):
        assert repr(engine) in str(info.value)
    assert set(ENGINES) == {"auto", "compiled", "cuda-graph", "python", "autograd", "torch"}


@pytest.mark.parametrize("old,new", [("fused", "compiled"), ("reference", "autograd")])
def test_old_engine_names_still_run_and_warn_once(old, new, monkeypatch):
    from rnnkit.engine import resolve
    monkeypatch.setattr(resolve, "_warned", set())
    x, h0, c0, weights = make_problem("gru", seed=5)
    with pytest.warns(FutureWarning, match=f"engine='{old}' is an old name; use '{new}'"):
        a = run_direction("gru", x, h0, c0, weights, engine=old)
    b = run_direction("gru", x, h0, c0, weights, engine=new)
    for u, v in zip(a, b):
        if u is not None:
            assert torch.equal(u, v)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # the second use is quiet
        run_direction("gru", x, h0, c0, weights, engine=old)
