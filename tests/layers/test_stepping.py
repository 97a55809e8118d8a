"""``layer.step``: every layer one step ahead (the generation path), and ``checkpoint_every`` on the layers."""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.layers import stepping

input_size, H, N, L, T = 5, 7, 3, 3, 6
LAYERS = {
    "lstm": lambda **kw: rnnkit.LSTM(input_size, H, L, **kw),
    "gru": lambda **kw: rnnkit.GRU(input_size, H, L, **kw),
    "gru_reset_after": lambda **kw: rnnkit.GRU(input_size, H, L, reset_after=True, **kw),
    "rnn_tanh": lambda **kw: rnnkit.RNN(input_size, H, L, **kw),
    "rnn_relu": lambda **kw: rnnkit.RNN(input_size, H, L, nonlinearity="relu", **kw),
}
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def _state(mode, dtype, scale=0.5):
    h = scale * torch.randn(L, N, H, dtype=dtype)
    return (h, scale * torch.randn(L, N, H, dtype=dtype)) if mode == "lstm" else h


def _close(a, b, dtype):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, **TOL[dtype])
    else:
        torch.testing.assert_close(a, b, **TOL[dtype])


def _assert_steps_equal_forward(layer, x, state, dtype):
    """T calls of ``layer.step`` under no_grad give ``layer(x, state)``'s outputs and final state."""
    with torch.no_grad():
        want_out, want_state = layer(x, state)
        outs = []
        for t in range(x.shape[0]):
            out, state = layer.step(x[t], state)
            outs.append(out)
    _close(torch.stack(outs), want_out, dtype)
    _close(state, want_state, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("engine", ["compiled", "python"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_steps_equal_the_forward_over_the_sequence(mode, engine, dtype):
    """T calls of ``step`` (compiled under no_grad for the fused engine) give forward's outputs and states."""
    torch.manual_seed(0)
    layer = LAYERS[mode](engine=engine, dtype=dtype, dropout=0.3).eval()
    x = torch.randn(T, N, input_size, dtype=dtype)
    state = _state(mode, dtype)
    _assert_steps_equal_forward(layer, x, state, dtype)
    assert ("_cache_stepper" in layer.__dict__) == (engine == "compiled")     # the compiled path ran where it should


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("engine", ["auto", "compiled", "python"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_steps_on_a_gpu_replay_a_captured_step(mode, engine):
    """On CUDA the C++ stepper can't serve (it reads CPU memory): the cell equations step, captured once in a CUDA
    graph and replayed where the engine allows it, and give forward's results either way."""
    torch.manual_seed(0)
    layer = LAYERS[mode](engine=engine, dtype=torch.float64).cuda().eval()
    x = torch.randn(T, N, input_size, dtype=torch.float64, device="cuda")
    state = _state(mode, torch.float64)
    state = tuple(s.cuda() for s in state) if isinstance(state, tuple) else state.cuda()
    _assert_steps_equal_forward(layer, x, state, torch.float64)
    assert "_cache_stepper" not in layer.__dict__
    assert ("_cache_graphed_steps" in layer.__dict__) == (engine != "python")


@pytest.mark.parametrize("mode", list(LAYERS))
def test_graphed_step_replays_the_cell_equations(mode):
    """The GPU's captured step, with the eager stand-in for the graph: steps equal forward, the outputs returned
    are copies (the next replay doesn't change them), and the graph reads the live parameters."""
    torch.manual_seed(3)
    layer = LAYERS[mode](dtype=torch.float64).eval()
    x = torch.randn(T, N, input_size, dtype=torch.float64)
    state = _state(mode, torch.float64)
    with torch.no_grad():
        want_out, want_state = layer(x, state)
        h0, c0 = (state if mode == "lstm" else (state, None))
        graphed = stepping.GraphedStep(layer, x[0], h0, c0)
        outs, first = [], None
        for t in range(T):
            h, c = graphed.step(x[t], h0, c0)
            first = h if first is None else first                        # kept as returned, not copied
            outs.append(h[-1])
            h0, c0 = h, c
        layer.weight_ih_l0.mul_(2.0)                                   # an optimizer step, in place
        moved, _ = graphed.step(x[0], *(state if mode == "lstm" else (state, None)))
        want_moved, _ = layer(x[:1], state)
    torch.testing.assert_close(torch.stack(outs), want_out, **TOL[torch.float64])
    _close((h0, c0) if mode == "lstm" else h0, want_state, torch.float64)
    torch.testing.assert_close(first[-1], want_out[0], **TOL[torch.float64])   # later replays left it alone
    torch.testing.assert_close(moved[-1], want_moved[0], **TOL[torch.float64])
    assert not torch.allclose(moved[-1], want_out[0])


def test_graphed_steps_are_kept_per_batch_size_and_parameters():
    layer = rnnkit.GRU(input_size, H, 2).eval()
    with torch.no_grad():
        one = stepping._graphed_step(layer, torch.zeros(1, input_size), torch.zeros(2, 1, H), None)
        assert stepping._graphed_step(layer, torch.ones(1, input_size), torch.ones(2, 1, H), None) is one
        for n in range(2, stepping.MAX_GRAPHS + 3):                    # beam search narrowing its batch
            stepping._graphed_step(layer, torch.zeros(n, input_size), torch.zeros(2, n, H), None)
        assert len(layer.__dict__["_cache_graphed_steps"]) == stepping.MAX_GRAPHS
        layer.weight_hh_l1 = torch.nn.Parameter(layer.weight_hh_l1.detach().clone())   # replaced: a new capture
        assert stepping._graphed_step(layer, torch.zeros(1, input_size), torch.zeros(2, 1, H), None) is not one
    with torch.inference_mode():                                       # its buffers are inference tensors...
        x, h = torch.randn(3, input_size), torch.randn(2, 3, H)         # a batch size not captured yet
        inside = stepping._graphed_step(layer, x, h, None).step(x, h, None)[0]
    with torch.no_grad():                                              # ...so outside it another capture serves
        outside = stepping._graphed_step(layer, x.clone(), h.clone(), None).step(x.clone(), h.clone(), None)[0]
    torch.testing.assert_close(inside.clone(), outside)


def test_step_off_the_cpu_never_asks_for_the_compiled_stepper():
    """A layer on another device (meta here; CUDA on a GPU machine) steps through the cell equations, also with
    engine="compiled", whose sequence loop has a GPU form but whose stepper is CPU-only."""
    layer = rnnkit.LSTM(input_size, H, 2, engine="compiled", device="meta")
    with torch.no_grad():
        out, (h, c) = layer.step(torch.zeros(N, input_size, device="meta"))
    assert out.shape == (N, H) and h.shape == c.shape == (2, N, H) and out.device.type == "meta"
    assert "_cache_stepper" not in layer.__dict__


def test_stepper_follows_changed_weights():
    """The compiled stepper packs the weights once; an in-place update (an optimizer step) rebuilds it."""
    torch.manual_seed(1)
    layer = rnnkit.LSTM(input_size, H, 2, engine="compiled", dtype=torch.float64)
    x = torch.randn(N, input_size, dtype=torch.float64)
    with torch.no_grad():
        before, _ = layer.step(x)
        layer.weight_ih_l1.mul_(1.5)             # (weight_hh would not show: h_0 = 0)
        after, _ = layer.step(x)
        want, _ = layer(x.unsqueeze(0))
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, want[0], **TOL[torch.float64])


def test_step_with_gradients_matches_autograd_through_forward():
    """With autograd on (e.g. scheduled sampling in training), ``step`` runs the cell equations and its
    gradients are forward's."""
    torch.manual_seed(2)
    layer = rnnkit.GRU(input_size, H, 2, dtype=torch.float64)
    x = torch.randn(N, input_size, dtype=torch.float64, requires_grad=True)
    out, h = layer.step(x)
    (out.sum() + h.pow(2).sum()).backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]
    x.grad = None
    layer.zero_grad()
    out2, h2 = layer(x.unsqueeze(0))
    (out2[0].sum() + h2.pow(2).sum()).backward()
    for g, g2 in zip(grads, [x.grad] + [p.grad for p in layer.parameters()]):
        torch.testing.assert_close(g, g2, rtol=1e-10, atol=1e-12)


def test_step_batch_size_change_and_bad_input():
    layer = rnnkit.LSTM(input_size, H, 2, engine="compiled")
    with torch.no_grad():
        assert layer.step(torch.randn(4, input_size))[0].shape == (4, H)
        assert layer.step(torch.randn(1, input_size))[0].shape == (1, H)  # a new batch size: a new stepper
        with pytest.raises(ValueError, match=r"x must be \(N, 5\), got shape \(4, 6\)"):
            layer.step(torch.randn(4, 6))
        with pytest.raises(ValueError, match="h_0"):
            layer.step(torch.randn(4, input_size), (torch.zeros(2, 3, H), torch.zeros(2, 3, H)))
    with pytest.raises(ValueError, match="bidirectional layer can't run one step at a time"):
        rnnkit.GRU(input_size, H, bidirectional=True).step(torch.randn(2, input_size))


@pytest.mark.parametrize("mode", ["lstm", "gru", "gru_reset_after", "rnn_tanh"])
def test_checkpoint_every_gives_the_same_gradients(mode):
    """Recomputing windows of 4 steps in the backward changes nothing but memory."""
    torch.manual_seed(3)
    layer = LAYERS[mode](engine="compiled", dtype=torch.float64)
    x = torch.randn(11, N, input_size, dtype=torch.float64, requires_grad=True)
    results = []
    for every in (None, 4):
        layer.checkpoint_every = every
        x.grad = None
        layer.zero_grad()
        out, _ = layer(x, lengths=[11, 7, 3])
        out.pow(2).sum().backward()
        results.append([out.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_checkpoint_every_needs_the_compiled_engine():
    layer = rnnkit.LSTM(input_size, H, engine="python")
    layer.checkpoint_every = 10
    with pytest.raises(ValueError, match=r"checkpoint_every needs the compiled engine \(the CPU.s C\+\+ loop\); "
                                         r"this run uses the .python."):
        layer(torch.randn(3, 2, input_size))


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True])
def test_checkpoint_every_must_be_a_positive_integer(value):
    """QA: 2.5 reached the C++ binding ("incompatible function arguments"), "3" a raw comparison error, and True
    was taken as 1."""
    layer = rnnkit.LSTM(input_size, H)
    layer.checkpoint_every = value
    with pytest.raises(ValueError, match=rf"checkpoint_every must be a positive integer number of steps \(or None\), "
                                         rf"got {value!r}"):
        layer(torch.randn(3, 2, input_size))
