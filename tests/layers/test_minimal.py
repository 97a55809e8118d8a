"""MinGRU / MinLSTM and the scan under them: every implementation against a plain step-by-step loop in float64."""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.cells.minimal import minimal_step, positive_activation
from rnnkit.engine import scan as S
from rnnkit.layers.minimal import MinGRU, MinLSTM

F64 = torch.float64
T, N, input_size, H = 6, 4, 3, 5
LENGTHS = torch.tensor([6, 2, 1, 4])
LAYERS = {"mingru": MinGRU, "minlstm": MinLSTM}
HAS_COMPILED = S.compiled_unavailable_reason(torch.zeros(1)) is None
SCANS = (["compiled", "torch"] if HAS_COMPILED else ["torch"]) + ["autograd"]


def max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


# --------------------------------------------------------------------------- the hand loop (the twin)

def loop_scan(a, b, h0, reverse=False):
    h, prev = torch.empty_like(b), h0
    for t in (range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])):
        prev = a[t] * prev + b[t]
        h[t] = prev
    return h


def loop_layer(layer, x, h0, lengths=None):
    """The layer's forward written as a Python loop over :func:`minimal_step`, one sequence at a time."""
    D, Tn, Nn = layer.num_directions, x.shape[0], x.shape[1]
    inp, finals = x, []
    for layer_index in range(layer.num_layers):
        outs = []
        for d in range(D):
            weight, bias = layer.layer_weights(layer_index, d)
            cols, last = [], []
            for n in range(Nn):
                L = Tn if lengths is None else int(lengths[n])
                h = h0[layer_index * D + d, n:n + 1]
                col = [inp.new_zeros(layer.hidden_size)] * Tn
                for t in (range(L - 1, -1, -1) if d == 1 else range(L)):
                    h = minimal_step(layer.kind, inp[t, n:n + 1], h, weight, bias, layer.log_space)
                    col[t] = h[0]
                cols.append(torch.stack(col))
                last.append(h[0])
            outs.append(torch.stack(cols, dim=1))
            finals.append(torch.stack(last))
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(finals)


def grads_of(layer, x, h0, out, h_n, seed=0):
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=F64)).sum() + \
        (h_n * torch.randn(h_n.shape, generator=g, dtype=F64)).sum()
    return torch.autograd.grad(loss, [x, h0, *layer.parameters()])


def problem(kind, log_space=False, num_layers=2, bidirectional=True, seed=0):
    torch.manual_seed(seed)
    layer = LAYERS[kind](input_size, H, num_layers=num_layers, bidirectional=bidirectional, log_space=log_space,
                         dtype=F64)
    with torch.no_grad():                                     # gates far from 1/2, as after training
        for p in layer.parameters():
            p.mul_(3.0)
    x = torch.randn(T, N, input_size, dtype=F64, requires_grad=True)
    h0 = torch.randn(num_layers * layer.num_directions, N, H, dtype=F64)
    h0 = (h0.abs() if log_space else h0).requires_grad_()
    return layer, x, h0


# --------------------------------------------------------------------------- the scan itself

@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("steps", [1, 2, 7, 26])               # 26: chunks of 6 and a tail of 2
def test_linear_scan_equals_the_loop(scan, reverse, steps):
    torch.manual_seed(steps)
    a = torch.rand(steps, 3, 4, dtype=F64, requires_grad=True)
    b = torch.randn(steps, 3, 4, dtype=F64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=F64, requires_grad=True)
    g = torch.randn(steps, 3, 4, dtype=F64)
    ours = S.linear_scan(a, b, h0, reverse=reverse, scan=scan)
    theirs = loop_scan(a, b, h0, reverse)
    assert max_diff([ours], [theirs]) < 1e-12
    assert max_diff(torch.autograd.grad(ours, (a, b, h0), g), torch.autograd.grad(theirs, (a, b, h0), g)) < 1e-12


def test_linear_scan_golden_values():
    a = torch.tensor([0.5, 0.5, 2.0], dtype=F64).view(3, 1, 1)
    b = torch.tensor([1.0, 0.0, 1.0], dtype=F64).view(3, 1, 1)
    h0 = torch.tensor([[4.0]], dtype=F64)
    for scan in SCANS:                                        # 0.5*4+1 = 3, 0.5*3 = 1.5, 2*1.5+1 = 4
        assert S.linear_scan(a, b, h0, scan=scan).flatten().tolist() == [3.0, 1.5, 4.0]
        assert S.linear_scan(a, b, h0, reverse=True, scan=scan).flatten().tolist() == [3.25, 4.5, 9.0]


@pytest.mark.parametrize("scan", SCANS)
def test_linear_scan_gradcheck(scan):
    torch.manual_seed(1)
    a = torch.rand(5, 2, 3, dtype=F64, requires_grad=True)
    b = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=F64, requires_grad=True)
    for reverse in (False, True):
        assert torch.autograd.gradcheck(lambda *t, r=reverse: S.linear_scan(*t, reverse=r, scan=scan), (a, b, h0))


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_minimal_gradcheck(kind):
    torch.manual_seed(2)
    G = 2 if kind == "mingru" else 3
    x = torch.randn(4, 3, 2, dtype=F64, requires_grad=True)
    h0 = torch.rand(3, 2, dtype=F64, requires_grad=True)
    w = torch.randn(G * 2, 2, dtype=F64, requires_grad=True)
    b = torch.randn(G * 2, dtype=F64, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])
    cases = [(scan, False) for scan in SCANS] + [(scan, True) for scan in SCANS + ["log"]]
    for scan, positive in cases:
        for reverse in (False, True):
            def f(*args, reverse=reverse, scan=scan, positive=positive):
                return S.run_minimal(kind, *args, lengths=lengths, reverse=reverse, scan=scan, positive=positive)
            assert torch.autograd.gradcheck(f, (x, h0, w, b)), (scan, positive, reverse)


# --------------------------------------------------------------------------- layers against the loop

@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("log_space", [False, True], ids=["plain", "logspace"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_layer_equals_the_step_loop(kind, log_space, lengths):
    """Two bidirectional layers, every scan: outputs, final states and every gradient as the loop, < 1e-10."""
    layer, x, h0 = problem(kind, log_space)
    ref_out, ref_h = loop_layer(layer, x, h0, lengths)
    ref_grads = grads_of(layer, x, h0, ref_out, ref_h)
    for scan in SCANS + (["log"] if log_space else []):
        layer.scan = scan
        out, h_n = layer(x, h0, lengths=lengths)
        assert out.shape == (T, N, 2 * H) and h_n.shape == (4, N, H)
        assert max_diff([out, h_n], [ref_out, ref_h]) < 1e-10, scan
        assert max_diff(grads_of(layer, x, h0, out, h_n), ref_grads) < 1e-10, scan
    if lengths is not None:                                   # zero past each end (real values before it)
        assert out[2:, 1].abs().max() == 0 and out[1:, 2].abs().max() == 0 and out[4:, 3].abs().max() == 0
        assert out[1, 1].abs().min() > 0 and out[0, 2].abs().min() > 0


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_compiled_backward_in_chunks(kind):
    """N = 600: the compiled backward runs in chunks of 2048 // 600 = 3 steps (T = 10: 3 + 3 + 3 + 1), passing
    the carried gradient and, reading in reverse, the state of sequences that already ended across chunks."""
    if not HAS_COMPILED:
        pytest.skip("no compiled extension")
    torch.manual_seed(3)
    steps, batch = 10, 600
    layer = LAYERS[kind](2, 3, bidirectional=True, dtype=F64)
    x = torch.randn(steps, batch, 2, dtype=F64, requires_grad=True)
    h0 = torch.randn(2, batch, 3, dtype=F64, requires_grad=True)
    lengths = torch.randint(1, steps + 1, (batch,))
    results = []
    for scan in ("compiled", "torch"):
        layer.scan = scan
        out, h_n = layer(x, h0, lengths=lengths)
        results.append([out, h_n, *grads_of(layer, x, h0, out, h_n)])
    assert max_diff(*results) < 1e-12


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_padding_is_ignored(kind):
    """Values past a sequence's end change nothing and get no gradient."""
    layer, x, h0 = problem(kind, bidirectional=True, num_layers=1)
    out, h_n = layer(x, h0, lengths=LENGTHS)
    x2 = x.detach().clone()
    x2[2:, 1] = 100.0
    x2 = x2.requires_grad_()
    out2, h_n2 = layer(x2, h0, lengths=LENGTHS)
    assert max_diff([out, h_n], [out2, h_n2]) == 0
    (gx,) = torch.autograd.grad(out2.sum() + h_n2.sum(), x2)
    assert gx[2:, 1].abs().max() == 0 and gx[:2, 1].abs().min() > 0


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_sequences_alone_equal_the_padded_batch(kind):
    layer, x, h0 = problem(kind, bidirectional=True, num_layers=2)
    out, h_n = layer(x, h0, lengths=LENGTHS)
    for n, L in enumerate(LENGTHS.tolist()):
        o, h = layer(x[:L, n:n + 1], h0[:, n:n + 1])
        assert max_diff([o, h], [out[:L, n:n + 1], h_n[:, n:n + 1]]) < 1e-12


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_bidirectional_reverse_half_reads_the_flipped_sequence(kind):
    layer, x, h0 = problem(kind, bidirectional=True, num_layers=1)
    out, h_n = layer(x, h0)
    forward_only = LAYERS[kind](input_size, H, dtype=F64)
    with torch.no_grad():
        forward_only.weight_ih_l0.copy_(layer.weight_ih_l0_reverse)
        forward_only.bias_ih_l0.copy_(layer.bias_ih_l0_reverse)
    o, h = forward_only(x.flip(0), h0[1:])
    assert max_diff([out[..., H:], h_n[1:]], [o.flip(0), h]) < 1e-12


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("scan", SCANS)
def test_forward_equals_repeated_step(kind, scan):
    layer, x, h0 = problem(kind, num_layers=3, bidirectional=False)
    layer.scan = scan
    out, h_n = layer(x, h0)
    state, steps = h0, []
    for t in range(T):
        y, state = layer.step(x[t], state)
        steps.append(y)
    assert max_diff([torch.stack(steps), state], [out, h_n]) < 1e-12
    y, s = layer.step(x[0])                                   # zeros by default
    out1, h_n1 = layer(x[:1])
    assert max_diff([y, s], [out1[0], h_n1]) < 1e-12


def test_log_space_is_the_positive_activation():
    """log_space=True: h~ = g(p) > 0, so a positive state stays positive; the log scan equals the others."""
    layer, x, h0 = problem("mingru", log_space=True, bidirectional=False, num_layers=1)
    layer.scan = "log"
    out_log, h_log = layer(x, h0)
    assert out_log.min() > 0
    for scan in SCANS:
        layer.scan = scan
        assert max_diff(layer(x, h0), [out_log, h_log]) < 1e-10
    g = positive_activation(torch.tensor([-2.0, 0.0, 3.0], dtype=F64))
    assert torch.allclose(g, torch.tensor([1 / (1 + torch.e ** 2), 0.5, 3.5], dtype=F64))


def test_golden_values():
    """Constant weights: the equations by hand."""
    gru = MinGRU(1, 1, bias=True, dtype=F64)
    lstm = MinLSTM(1, 1, bias=True, dtype=F64)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor([[0.0], [1.0]]))             # k_z = b_z, p = x + b_h
        gru.bias_ih_l0.copy_(torch.tensor([0.0, 1.0]))                   # z = 1/2
        lstm.weight_ih_l0.copy_(torch.tensor([[0.0], [0.0], [1.0]]))
        lstm.bias_ih_l0.copy_(torch.tensor([0.0, 0.0, 1.0]))             # f = i = 1/2: f' = i' = 1/2
    x = torch.tensor([[[1.0]], [[3.0]]], dtype=F64)                      # p = 2, then 4
    h0 = torch.tensor([[[2.0]]], dtype=F64)
    for layer in (gru, lstm):
        for scan in SCANS:
            layer.scan = scan
            out, h_n = layer(x, h0)                                      # (2 + 2)/2 = 2, (2 + 4)/2 = 3
            assert out.flatten().tolist() == [2.0, 3.0] and h_n.item() == 3.0


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_float32_compiled_is_close_to_float64(kind):
    if not HAS_COMPILED:
        pytest.skip("no compiled extension")
    layer, x, h0 = problem(kind)
    out64, h64 = layer(x, h0, lengths=LENGTHS)
    layer32 = LAYERS[kind](input_size, H, num_layers=2, bidirectional=True, scan="compiled")
    layer32.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    out32, h32 = layer32(x.detach().float(), h0.detach().float(), lengths=LENGTHS)
    assert max_diff([out32.double(), h32.double()], [out64, h64]) < 1e-5


@pytest.mark.parametrize("scan", SCANS)
def test_memory_saved_for_the_backward_is_linear_in_T(scan):
    """What autograd keeps: the compiled scan exactly x, U, the products x U and the outputs (+ b, h0)."""
    def saved_floats(steps):
        sizes = {}
        def pack(t):
            sizes[(t.data_ptr(), t.numel())] = t.numel()
            return t
        layer = MinGRU(input_size, H, dtype=F64, scan=scan)
        x = torch.randn(steps, N, input_size, dtype=F64, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x)
        return sum(sizes.values())
    small, big = saved_floats(50), saved_floats(100)
    per_step = (big - small) / 50
    if scan == "compiled":
        assert small == 50 * N * (input_size + 3 * H) + 2 * H * input_size + 2 * H + N * H
    assert per_step <= N * (input_size + 8 * H)                    # a few (N, H) tensors per step, no more
    assert saved_floats(200) - big == pytest.approx(2 * (big - small), rel=0.05)


# --------------------------------------------------------------------------- interface

def test_parameters_and_exports():
    assert rnnkit.MinGRU is MinGRU and rnnkit.MinLSTM is MinLSTM
    layer = MinLSTM(3, 4, num_layers=2, bidirectional=True)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {"weight_ih_l0": (12, 3), "bias_ih_l0": (12,), "weight_ih_l0_reverse": (12, 3),
                      "bias_ih_l0_reverse": (12,), "weight_ih_l1": (12, 8), "bias_ih_l1": (12,),
                      "weight_ih_l1_reverse": (12, 8), "bias_ih_l1_reverse": (12,)}
    assert set(MinGRU(3, 4, bias=False).state_dict()) == {"weight_ih_l0"}
    assert all(p.abs().max() <= 0.5 for p in layer.parameters())      # uniform(±1/sqrt(4))


def test_batch_first_unbatched_and_dropout():
    layer, x, h0 = problem("mingru", bidirectional=True, num_layers=2)
    out, h_n = layer(x, h0)
    bf = MinGRU(input_size, H, num_layers=2, bidirectional=True, batch_first=True, dtype=F64)
    bf.load_state_dict(layer.state_dict())
    out_bf, h_bf = bf(x.transpose(0, 1), h0)
    assert max_diff([out_bf.transpose(0, 1), h_bf], [out, h_n]) == 0
    o, h = layer(x[:, 0], h0[:, 0])                                      # unbatched (T, I)
    assert o.shape == (T, 2 * H) and max_diff([o, h], [out[:, 0], h_n[:, 0]]) < 1e-12
    drop = MinGRU(input_size, H, num_layers=2, dropout=0.5, dtype=F64)
    assert max_diff(drop.eval()(x), drop.eval()(x)) == 0
    torch.manual_seed(0)
    a = drop.train()(x)[0]
    assert (a - drop.eval()(x)[0]).abs().max() > 1e-3


def test_autocast_runs_the_scan_in_the_parameters_dtype():
    layer = MinGRU(input_size, H, num_layers=2)
    x = torch.randn(T, N, input_size)
    out, h_n = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ac, h_ac = layer(x.bfloat16())
    assert out_ac.dtype == torch.float32 and h_ac.dtype == torch.float32
    assert max_diff([out_ac, h_ac], [out, h_n]) < 2e-2           # only the input was rounded to bfloat16


def test_without_the_extension_auto_runs_torch_and_compiled_says_why(monkeypatch):
    from rnnkit.engine import build
    monkeypatch.setattr(S, "_compiled_module", lambda: None)
    monkeypatch.setitem(build.state, "error", "no C++ compiler found (test)")
    layer, x, h0 = problem("mingru", num_layers=1, bidirectional=False)
    assert layer.resolved_scan(x) == "torch"
    out, h_n = layer(x, h0)
    layer.scan = "torch"
    assert max_diff(layer(x, h0), [out, h_n]) == 0
    layer.scan = "compiled"
    with pytest.raises(RuntimeError, match=r"scan='compiled' cannot run here: .*no C\+\+ compiler found \(test\)"):
        layer(x, h0)


def test_errors_say_what_is_wrong():
    layer = MinGRU(input_size, H, dtype=F64)
    x = torch.randn(T, N, input_size, dtype=F64)
    with pytest.raises(ValueError, match="log_space=True"):
        MinGRU(input_size, H, scan="log")
    with pytest.raises(ValueError, match="scan must be one of"):
        MinGRU(input_size, H, scan="fast")
    with pytest.raises(ValueError, match="one Tensor h_0"):
        layer(x, (torch.zeros(1, N, H), torch.zeros(1, N, H)))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(1, 4, 5\)"):
        layer(x, torch.zeros(2, N, H, dtype=F64))
    with pytest.raises(ValueError, match="lengths must be in 1..6"):
        layer(x, lengths=[7, 1, 1, 1])
    with pytest.raises(TypeError, match="not a PackedSequence"):
        layer(torch.nn.utils.rnn.pack_padded_sequence(x, [6, 5, 4, 3]))
    with pytest.raises(ValueError, match="bidirectional layer can't run one step"):
        MinGRU(input_size, H, bidirectional=True).step(torch.zeros(N, input_size))
    with pytest.raises(RuntimeError, match="scan='compiled' cannot run here.*bfloat16"):
        MinGRU(input_size, H, scan="compiled", dtype=torch.bfloat16)(x.bfloat16())
    with pytest.raises(ValueError, match="needs h~_t > 0"):
        S.run_minimal("mingru", x, torch.zeros(N, H, dtype=F64), layer.weight_ih_l0, None, scan="log")
