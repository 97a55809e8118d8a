"""The cells: one time step of each recurrence, against torch.nn's cells, the lecture's equations and by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step, set_forget_bias

input_size, H, N = 3, 4, 5
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["f64", "f32"]


def sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


# The cells that compute exactly what a torch.nn cell computes: (id, rnnkit factory, torch.nn factory).
TWINS = [
    ("rnn_tanh", lambda **kw: RNNCell(input_size, H, nonlinearity="tanh", **kw),
     lambda **kw: nn.RNNCell(input_size, H, nonlinearity="tanh", **kw)),
    ("rnn_relu", lambda **kw: RNNCell(input_size, H, nonlinearity="relu", **kw),
     lambda **kw: nn.RNNCell(input_size, H, nonlinearity="relu", **kw)),
    ("lstm", lambda **kw: LSTMCell(input_size, H, **kw), lambda **kw: nn.LSTMCell(input_size, H, **kw)),
    ("gru_reset_after", lambda **kw: GRUCell(input_size, H, reset_after=True, **kw),
     lambda **kw: nn.GRUCell(input_size, H, **kw)),
]


def _state(kind: str, dtype, seed: int = 1, requires_grad: bool = True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, H, generator=g, dtype=dtype).requires_grad_(requires_grad)
    if kind == "lstm":
        return h, torch.randn(N, H, generator=g, dtype=dtype).requires_grad_(requires_grad)
    return h


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


# --------------------------------------------------------------------------- vs torch.nn cells

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind,ours_factory,torch_factory", TWINS, ids=[t[0] for t in TWINS])
def test_cell_matches_torch_cell(kind, ours_factory, torch_factory, dtype, bias):
    torch.manual_seed(0)
    ref = torch_factory(bias=bias, dtype=dtype)
    ours = ours_factory(bias=bias, dtype=dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)     # same names and shapes as torch.nn's cell
    x = torch.randn(N, input_size, dtype=dtype) * 2
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_ours, s_ref = _state(kind, dtype), _state(kind, dtype)
    out_ours, out_ref = _flat(ours(x_ours, s_ours)), _flat(ref(x_ref, s_ref))
    assert len(out_ours) == len(out_ref)
    for a, b in zip(out_ours, out_ref):
        torch.testing.assert_close(a, b, **TOL[dtype])
    g = torch.Generator().manual_seed(3)
    upstream = [torch.randn(N, H, generator=g, dtype=dtype) for _ in out_ours]
    sum((o * u).sum() for o, u in zip(out_ours, upstream)).backward()
    sum((o * u).sum() for o, u in zip(out_ref, upstream)).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **TOL[dtype])
    for a, b in zip(_flat(s_ours), _flat(s_ref)):
        torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, ref_params[name].grad, **TOL[dtype], msg=name)


@pytest.mark.parametrize("kind,ours_factory,torch_factory", TWINS, ids=[t[0] for t in TWINS])
def test_cell_default_state_is_zero(kind, ours_factory, torch_factory):
    torch.manual_seed(0)
    cell = ours_factory(dtype=torch.float64)
    x = torch.randn(N, input_size, dtype=torch.float64)
    zero = torch.zeros(N, H, dtype=torch.float64)
    got = _flat(cell(x))
    want = _flat(cell(x, (zero, zero) if kind == "lstm" else zero))
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind,ours_factory,torch_factory", TWINS, ids=[t[0] for t in TWINS])
def test_step_function_equals_cell(kind, ours_factory, torch_factory):
    torch.manual_seed(0)
    cell = ours_factory(dtype=torch.float64)
    x = torch.randn(N, input_size, dtype=torch.float64)
    s = _state(kind, torch.float64, requires_grad=False)
    if kind == "lstm":
        step = lstm_step(x, s, *cell.weights())
    elif kind.startswith("rnn"):
        step = rnn_step(x, s, *cell.weights(), nonlinearity=kind.split("_")[1])
    else:
        step = gru_step(x, s, *cell.weights(), reset_after=True)
    for a, b in zip(_flat(step), _flat(cell(x, s))):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- the lecture's GRU

def lecture_gru_loop(xs, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """Cho et al. 2014 as the lecture writes it, row vectors, written from the equations alone:

        r_t  = σ(x_t U_r + h_{t-1} W_r + b_r)
        z_t  = σ(x_t U_z + h_{t-1} W_z + b_z)                  (the lecture's update gate)
        h~_t = tanh(x_t U_h + (r_t ⊙ h_{t-1}) W_h + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    The torch.nn layout stores PyTorch's update gate z' = 1 - z_lecture = σ(-(...)), so the lecture's U_z, W_z
    and b_z are the negated z blocks.
    """
    Hh = weight_hh.shape[1]
    U_r, U_z, U_h = (w.T for w in weight_ih.split(Hh, 0))
    W_r, W_z, W_h = (w.T for w in weight_hh.split(Hh, 0))
    b_ir, b_iz, b_ih_n = bias_ih.split(Hh)
    b_hr, b_hz, b_hh_n = bias_hh.split(Hh)
    U_z, W_z, b_z = -U_z, -W_z, -(b_iz + b_hz)                 # the lecture's z is 1 - PyTorch's z
    b_r, b_h = b_ir + b_hr, b_ih_n + b_hh_n
    states = []
    for x_t in xs:
        r = torch.sigmoid(x_t @ U_r + h @ W_r + b_r)
        z_lect = torch.sigmoid(x_t @ U_z + h @ W_z + b_z)
        h_tilde = torch.tanh(x_t @ U_h + (r * h) @ W_h + b_h)
        h = (1 - z_lect) * h + z_lect * h_tilde
        states.append(h)
    return states


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gru_reset_before_follows_the_lecture(dtype):
    torch.manual_seed(0)
    cell = GRUCell(input_size, H, dtype=dtype)
    assert cell.reset_after is False                          # the lecture's GRU is the default
    xs = [torch.randn(N, input_size, dtype=dtype) for _ in range(4)]
    h0 = torch.randn(N, H, dtype=dtype)
    want = lecture_gru_loop(xs, h0, *cell.weights())
    h = h0
    for x_t, w in zip(xs, want):
        h = cell(x_t, h)
        torch.testing.assert_close(h, w, **TOL[dtype])


def test_gru_reset_before_differs_from_reset_after():
    torch.manual_seed(0)
    before = GRUCell(input_size, H, dtype=torch.float64)
    after = GRUCell(input_size, H, reset_after=True, dtype=torch.float64)
    after.load_state_dict(before.state_dict())
    x, h = torch.randn(N, input_size, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    assert (before(x, h) - after(x, h)).abs().max() > 1e-3


def test_gru_reset_before_gradients_match_the_lecture_loop():
    torch.manual_seed(0)
    cell = GRUCell(input_size, H, dtype=torch.float64)
    lect = {k: v.detach().clone().requires_grad_() for k, v in cell.state_dict().items()}
    xs = torch.randn(3, N, input_size, dtype=torch.float64)
    h0 = torch.randn(N, H, dtype=torch.float64)
    x_a, x_b = xs.clone().requires_grad_(), xs.clone().requires_grad_()
    h_a, h_b = h0.clone().requires_grad_(), h0.clone().requires_grad_()
    h = h_a
    for x_t in x_a.unbind(0):
        h = cell(x_t, h)
    w = lecture_gru_loop(x_b.unbind(0), h_b, lect["weight_ih"], lect["weight_hh"], lect["bias_ih"],
                         lect["bias_hh"])[-1]
    up = torch.randn(N, H, dtype=torch.float64)
    (h * up).sum().backward()
    (w * up).sum().backward()
    torch.testing.assert_close(x_a.grad, x_b.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_a.grad, h_b.grad, rtol=1e-12, atol=1e-12)
    for name, p in cell.named_parameters():
        torch.testing.assert_close(p.grad, lect[name].grad, rtol=1e-12, atol=1e-12, msg=name)


# --------------------------------------------------------------------------- gradcheck

CELL_FACTORIES = [
    ("rnn_tanh", lambda b: RNNCell(2, 3, bias=b, nonlinearity="tanh", dtype=torch.float64)),
    ("rnn_relu", lambda b: RNNCell(2, 3, bias=b, nonlinearity="relu", dtype=torch.float64)),
    ("lstm", lambda b: LSTMCell(2, 3, bias=b, dtype=torch.float64)),
    ("gru", lambda b: GRUCell(2, 3, bias=b, dtype=torch.float64)),
    ("gru_reset_after", lambda b: GRUCell(2, 3, bias=b, reset_after=True, dtype=torch.float64)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind,factory", CELL_FACTORIES, ids=[c[0] for c in CELL_FACTORIES])
def test_cell_gradcheck(kind, factory, bias):
    torch.manual_seed(5)
    cell = factory(bias)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    params = [p for p in cell.parameters()]
    names = [n for n, _ in cell.named_parameters()]
    if kind == "rnn_relu":   # keep the relu kink away from the finite-difference steps
        a = x @ cell.weight_ih.T + h @ cell.weight_hh.T
        if bias:
            a = a + cell.bias_ih + cell.bias_hh
        assert a.abs().min() > 1e-3 and (a > 0).any() and (a < 0).any()

    n_state = 2 if kind == "lstm" else 1

    def f(x, *rest):
        state = tuple(rest[:n_state]) if kind == "lstm" else rest[0]
        out = torch.func.functional_call(cell, dict(zip(names, rest[n_state:])), (x, state))
        return out

    inputs = (x, h, c, *params) if kind == "lstm" else (x, h, *params)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


# --------------------------------------------------------------------------- parameter names and shapes

@pytest.mark.parametrize("cell,expected", [
    (RNNCell(3, 4), {"weight_ih": (4, 3), "weight_hh": (4, 4), "bias_ih": (4,), "bias_hh": (4,)}),
    (RNNCell(3, 4, nonlinearity="relu", bias=False), {"weight_ih": (4, 3), "weight_hh": (4, 4)}),
    (LSTMCell(3, 4), {"weight_ih": (16, 3), "weight_hh": (16, 4), "bias_ih": (16,), "bias_hh": (16,)}),
    (LSTMCell(5, 2, bias=False), {"weight_ih": (8, 5), "weight_hh": (8, 2)}),
    (GRUCell(3, 4), {"weight_ih": (12, 3), "weight_hh": (12, 4), "bias_ih": (12,), "bias_hh": (12,)}),
    (GRUCell(3, 4, reset_after=True), {"weight_ih": (12, 3), "weight_hh": (12, 4), "bias_ih": (12,),
                                       "bias_hh": (12,)}),
    (GRUCell(1, 6, bias=False), {"weight_ih": (18, 1), "weight_hh": (18, 6)}),
], ids=["rnn", "rnn_nobias", "lstm", "lstm_nobias", "gru", "gru_reset_after", "gru_nobias"])
def test_parameter_names_and_shapes(cell, expected):
    assert {n: tuple(p.shape) for n, p in cell.named_parameters()} == expected
    assert list(cell.state_dict()) == list(expected)


@pytest.mark.parametrize("ours,theirs", [
    (lambda: RNNCell(3, 4), lambda: nn.RNNCell(3, 4)),
    (lambda: LSTMCell(3, 4), lambda: nn.LSTMCell(3, 4)),
    (lambda: GRUCell(3, 4), lambda: nn.GRUCell(3, 4)),
], ids=["rnn", "lstm", "gru"])
def test_state_dict_loads_both_ways_with_torch_cells(ours, theirs):
    a, b = ours(), theirs()
    b.load_state_dict(a.state_dict(), strict=True)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v)
    c = theirs()
    a.load_state_dict(c.state_dict(), strict=True)
    for k, v in c.state_dict().items():
        assert torch.equal(a.state_dict()[k], v)


def test_default_initialisation_is_pytorchs_uniform_bound():
    torch.manual_seed(0)
    cell = LSTMCell(3, 25)
    bound = 1 / math.sqrt(25)
    for name, p in cell.named_parameters():
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.8 * bound, name      # uniform over the whole range, not a smaller one
        assert p.std() > 0.4 * bound, name


def test_top_level_exports_are_the_cells():
    assert rnnkit.RNNCell is RNNCell and rnnkit.LSTMCell is LSTMCell and rnnkit.GRUCell is GRUCell


# --------------------------------------------------------------------------- golden values by hand

W_IH, W_HH, B_IH, B_HH = 0.1, -0.2, 0.05, 0.3
X_GOLD = [1.0, 2.0]
H_GOLD = [0.5, -0.5, 1.0]
C_GOLD = [0.2, -1.0, 0.7]


def _constant(cell):
    with torch.no_grad():
        cell.weight_ih.fill_(W_IH)
        cell.weight_hh.fill_(W_HH)
        cell.bias_ih.fill_(B_IH)
        cell.bias_hh.fill_(B_HH)
    return cell


def _gold_inputs():
    return (torch.tensor([X_GOLD], dtype=torch.float64), torch.tensor([H_GOLD], dtype=torch.float64),
            torch.tensor([C_GOLD], dtype=torch.float64))


def test_golden_rnn_tanh_and_relu():
    x, h, _ = _gold_inputs()
    a = W_IH * sum(X_GOLD) + W_HH * sum(H_GOLD) + B_IH + B_HH          # 0.3 - 0.2 + 0.35 = 0.45
    assert a == pytest.approx(0.45)
    out = _constant(RNNCell(2, 3, dtype=torch.float64))(x, h)
    assert out[0].tolist() == pytest.approx([math.tanh(a)] * 3, abs=1e-15)
    out = _constant(RNNCell(2, 3, nonlinearity="relu", dtype=torch.float64))(x, h)
    assert out[0].tolist() == pytest.approx([a] * 3, abs=1e-15)
    out = _constant(RNNCell(2, 3, nonlinearity="relu", dtype=torch.float64))(-x, h)
    assert out.tolist() == [[0.0, 0.0, 0.0]]                          # a = -0.3 - 0.2 + 0.35 < 0


def test_golden_lstm():
    x, h, c = _gold_inputs()
    a = W_IH * sum(X_GOLD) + W_HH * sum(H_GOLD) + B_IH + B_HH          # the same for every gate unit
    i = f = o = sigmoid(a)
    g = math.tanh(a)
    c_new = [f * c_prev + i * g for c_prev in C_GOLD]
    h_new = [o * math.tanh(cn) for cn in c_new]
    out_h, out_c = _constant(LSTMCell(2, 3, dtype=torch.float64))(x, (h, c))
    assert out_c[0].tolist() == pytest.approx(c_new, abs=1e-15)
    assert out_h[0].tolist() == pytest.approx(h_new, abs=1e-15)


@pytest.mark.parametrize("reset_after", [False, True], ids=["lecture", "reset_after"])
def test_golden_gru(reset_after):
    x, h, _ = _gold_inputs()
    a = W_IH * sum(X_GOLD) + W_HH * sum(H_GOLD) + B_IH + B_HH
    r = z = sigmoid(a)
    if reset_after:   # n = tanh(x U_n + b_in + r * (h W_n + b_hn))
        n = math.tanh(W_IH * sum(X_GOLD) + B_IH + r * (W_HH * sum(H_GOLD) + B_HH))
    else:             # h~ = tanh(x U_n + (r * h) W_n + b_n)
        n = math.tanh(W_IH * sum(X_GOLD) + W_HH * sum(r * hp for hp in H_GOLD) + B_IH + B_HH)
    want = [(1 - z) * n + z * hp for hp in H_GOLD]
    out = _constant(GRUCell(2, 3, reset_after=reset_after, dtype=torch.float64))(x, h)
    assert out[0].tolist() == pytest.approx(want, abs=1e-15)


def test_golden_gru_forms_differ_by_hand():
    # Same weights, r = σ(0.45) ≈ 0.61, so applying it before or after the matmul must give different h~.
    x, h, _ = _gold_inputs()
    before = _constant(GRUCell(2, 3, dtype=torch.float64))(x, h)
    after = _constant(GRUCell(2, 3, reset_after=True, dtype=torch.float64))(x, h)
    assert (before - after).abs().min() > 1e-3


def test_golden_gate_order_lstm():
    """Only the forget block of the bias is large: C_t ≈ C_{t-1} (f ≈ 1) and the other gates see a = 0."""
    cell = LSTMCell(2, 3, dtype=torch.float64)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[3:6] = 50.0                                   # gate order i, f, g, o: f is block 1
        cell.bias_ih[6:9] = 1.0                                    # g block: C~ = tanh(1)
    x, h, c = _gold_inputs()
    out_h, out_c = cell(x, (h, c))
    want_c = [1.0 * cp + 0.5 * math.tanh(1.0) for cp in C_GOLD]  # f = σ(50) = 1, i = σ(0) = 0.5
    assert out_c[0].tolist() == pytest.approx(want_c, abs=1e-12)
    assert out_h[0].tolist() == pytest.approx([0.5 * math.tanh(v) for v in want_c], abs=1e-12)


def test_golden_gate_order_gru():
    """A large bias on the z block (PyTorch's z, block 1 of r, z, n) keeps h: h_t = z h_{t-1} + (1-z) h~."""
    cell = GRUCell(2, 3, dtype=torch.float64)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[3:6] = 50.0
    x, h, _ = _gold_inputs()
    assert cell(x, h)[0].tolist() == pytest.approx(H_GOLD, abs=1e-12)
    with torch.no_grad():
        cell.bias_ih[3:6] = -50.0                                 # z = 0: h_t = h~ = tanh(x U_n + (r h) W_n + b)
        cell.bias_ih[6:9] = 0.7
    assert cell(x, h)[0].tolist() == pytest.approx([math.tanh(0.7)] * 3, abs=1e-12)


# --------------------------------------------------------------------------- forget bias

def test_forget_bias_sets_the_forget_block_only():
    torch.manual_seed(0)
    plain = LSTMCell(3, 4)
    torch.manual_seed(0)
    cell = LSTMCell(3, 4, forget_bias=1.0)
    assert torch.equal(cell.bias_ih[4:8], torch.ones(4))
    assert torch.equal(cell.bias_hh[4:8], torch.zeros(4))
    for block in (slice(0, 4), slice(8, 16)):                    # i, g, o keep PyTorch's initialisation
        assert torch.equal(cell.bias_ih[block], plain.bias_ih[block])
        assert torch.equal(cell.bias_hh[block], plain.bias_hh[block])
    assert torch.equal(cell.weight_ih, plain.weight_ih) and torch.equal(cell.weight_hh, plain.weight_hh)
    # the total forget bias is the value asked for, so at x = h = 0 with zero weights f = σ(1)
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.zero_()
    total = cell.bias_ih + cell.bias_hh
    assert total[4:8].tolist() == pytest.approx([1.0] * 4)


def test_forget_bias_survives_reset_parameters_and_without_bias():
    cell = LSTMCell(3, 4, forget_bias=2.5)
    cell.reset_parameters()
    assert torch.equal(cell.bias_ih[4:8], torch.full((4,), 2.5))
    assert torch.equal(cell.bias_hh[4:8], torch.zeros(4))
    nob = LSTMCell(3, 4, bias=False, forget_bias=1.0)
    assert nob.bias_ih is None and nob.bias_hh is None


def test_set_forget_bias_function():
    b_ih, b_hh = torch.arange(8.0), torch.arange(8.0) + 10
    set_forget_bias(b_ih, b_hh, -3.0)
    assert b_ih.tolist() == [0, 1, -3, -3, 4, 5, 6, 7]
    assert b_hh.tolist() == [10, 11, 0, 0, 14, 15, 16, 17]
