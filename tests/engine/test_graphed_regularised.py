"""The CUDA-graph engine with recurrent dropout, zoneout and layer norm: the same arithmetic as the Python engine.

On the CPU :class:`rnnkit.engine.graphed.EagerGraph` stands in for the CUDA graph (the copying of masks and layer
norm's gains into static buffers, and their re-copying before a backward, are what is checked there); on a GPU
the same tests run the real capture, and a whole layer runs there through ``engine="auto"``.
"""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.cells.extras import Regularisation
from rnnkit.cells.spec import recurrence
from rnnkit.engine import graphed, run_bptt, sequence
from rnnkit.engine.resolve import resolve_engine
from rnnkit.engine.sequence import lengths_mask

from graphed_helpers import (DEVICES, F64, GATES, assert_same, fresh_cache, leaves, needs_cuda,  # noqa: F401
                             outputs_and_grads, problem)                                  # (fresh_cache: autouse)

OPTIONS = {"masks": dict(h_mask=True, zoneout=True), "layer_norm": dict(ln=True),
           "all": dict(h_mask=True, zoneout=True, ln=True)}


def regularised_problem(mode, device, seed=0, T=5, N=3, I=4, H=3, h_mask=False, zoneout=False, ln=False):
    """``(x, h0, c0, weights, reg, leaves)``: :func:`problem`'s tensors and a Regularisation whose layer-norm gains
    and biases are leaves too (away from 1 and 0, so that their gradients are general)."""
    x, h0, c0, weights = problem(mode, device, T=T, N=N, input_size=I, H=H, seed=seed)
    g = torch.Generator().manual_seed(seed + 1000)
    G = GATES[mode]

    def rnd(*shape, scale=0.6, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=F64) * scale + shift).to(device).requires_grad_()

    ln_params = None
    if ln:
        ln_params = (rnd(G * H, scale=0.3, shift=1.0), rnd(G * H, scale=0.3), rnd(G * H, scale=0.3, shift=1.0),
                     rnd(G * H, scale=0.3), *((rnd(H, scale=0.3, shift=1.0), rnd(H, scale=0.3))
                                              if mode == "lstm" else (None, None)))

    def bits(*shape, p):
        return (torch.rand(*shape, generator=g) < p).to(device)

    reg = Regularisation(
        h_mask=(bits(N, H, p=0.7).to(F64) / 0.7) if h_mask else None,
        zoneout_h=bits(T, N, H, p=0.3) if zoneout else None,
        zoneout_c=bits(T, N, H, p=0.4) if zoneout and mode == "lstm" else None,
        ln=ln_params)
    return x, h0, c0, weights, reg, leaves(x, h0, c0, weights) + [t for t in ln_params or () if t is not None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("mode", list(GATES))
def test_matches_the_python_engine_with_the_same_masks(mode, options, device):
    x, h0, c0, weights, reg, leaves = regularised_problem(mode, device, **OPTIONS[options])
    mask = lengths_mask(torch.tensor([5, 2, 4], device=device), 5)
    expected = outputs_and_grads(run_bptt, mode, x, h0, c0, weights, mask, reg=reg, wrt=leaves)
    assert_same(outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, mask, reg=reg, wrt=leaves), expected)
    assert len(graphed._entries) == 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_a_length_between_buckets_runs_padded_with_its_masks(mode, device):
    """17 steps run in the entry of 18 (graphed.bucket): the zoneout masks get a masked-out step too."""
    x, h0, c0, weights, reg, leaves = regularised_problem(mode, device, T=17, **OPTIONS["all"])
    mask = lengths_mask(torch.tensor([17, 6, 16], device=device), 17)
    expected = outputs_and_grads(run_bptt, mode, x, h0, c0, weights, mask, reg=reg, wrt=leaves)
    assert_same(outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, mask, reg=reg, wrt=leaves), expected)
    assert [k[6] for k in graphed._entries] == [(18, 3, 4)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_two_calls_of_one_shape_with_their_own_masks_before_either_backward(mode, device):
    """A bidirectional layer's two directions share an entry: each backward must see its own call's masks and
    gains, not the ones the other call copied in last."""
    first = regularised_problem(mode, device, seed=3, **OPTIONS["all"])
    second = regularised_problem(mode, device, seed=4, **OPTIONS["all"])

    def both(runner):
        outs = [runner(recurrence(mode), x, h0, c0, w, None, reg=reg)[0] for x, h0, c0, w, reg, _ in (first, second)]
        loss = outs[0].square().sum() + outs[1].sin().sum()
        return [*outs, *torch.autograd.grad(loss, first[5] + second[5])]

    assert_same(both(graphed.run_graphed), both(run_bptt))
    assert len(graphed._entries) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_takes_zoneout_as_its_expectation_and_a_plain_call_its_own_entry(device):
    x, h0, c0, weights, _, _ = regularised_problem("lstm", device, ln=True)
    reg = Regularisation(zoneout_h=x.new_full((5, 3, 3), 0.3), zoneout_c=x.new_full((5, 3, 3), 0.2),
                         ln=regularised_problem("lstm", device, ln=True)[4].ln)
    with torch.no_grad():
        got = graphed.run_graphed(recurrence("lstm"), x, h0, c0, weights, None, reg=reg)
        expected = run_bptt(recurrence("lstm"), x, h0, c0, weights, None, reg=reg)
        plain = graphed.run_graphed(recurrence("lstm"), x, h0, c0, weights, None)
    assert_same(got, expected)
    assert_same(plain, run_bptt(recurrence("lstm"), x.detach(), h0, c0, weights, None))
    assert len(graphed._entries) == 2


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_with_every_option_through_a_reused_entry(device):
    x, h0, c0, weights, reg, leaves = regularised_problem("lstm", device, T=3, N=2, I=2, H=2, **OPTIONS["all"])

    def f(*args):
        xx, hh, cc, *rest = args
        ln = Regularisation(reg.h_mask, reg.zoneout_h, reg.zoneout_c, tuple(rest[4:]))
        out, h_n, c_n = graphed.run_graphed(recurrence("lstm"), xx, hh, cc, tuple(rest[:4]), None, reg=ln)
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, leaves)
    assert len(graphed._entries) == 1


KINDS = {"lstm": (rnnkit.LSTM, {}), "gru": (rnnkit.GRU, {}), "gru-torch": (rnnkit.GRU, {"reset_after": True}),
         "rnn": (rnnkit.RNN, {})}
EVERY = dict(variational_dropout=0.2, weight_drop=0.3, recurrent_dropout=0.3, zoneout=0.25, layer_norm=True)


def layer_results(kind, engine, device, seed=7):
    """A 2-layer bidirectional layer with every option, trained one step on ``device`` from a fixed seed."""
    cls, kw = KINDS[kind]
    torch.manual_seed(0)
    layer = cls(3, 4, num_layers=2, bidirectional=True, engine=engine, dtype=F64, **kw, **EVERY).to(device)
    x = torch.randn(5, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(1)).to(device).requires_grad_()
    torch.manual_seed(seed)
    out, _ = layer(x, lengths=torch.tensor([5, 3, 1], device=device))
    out.square().sum().backward()
    return [out.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("kind", KINDS)
def test_a_layer_with_every_option_runs_the_graphed_loops_as_the_python_engine(kind, monkeypatch):
    """The whole stack (two layers, both directions, lengths) through the graphed engine, on the CPU through
    :class:`EagerGraph` (standing in for the ``python`` runner), against the autograd twin with the same seed."""
    expected = layer_results(kind, "autograd", "cpu")
    monkeypatch.setattr(sequence, "run_bptt", graphed.run_graphed)
    got = layer_results(kind, "python", "cpu")
    assert len(graphed._entries) == 2          # layers 0 and 1 (inputs 3 and 8), each shared by both directions
    assert_same(got, expected, tol=1e-10)


@needs_cuda
@pytest.mark.parametrize("kind", KINDS)
def test_on_cuda_auto_runs_every_option_in_the_graphed_loops(kind):
    x = torch.zeros(2, 1, 3, device="cuda")
    from rnnkit.cells.spec import GRU, LSTM
    needs = frozenset({"recurrent_dropout", "zoneout", "layer_norm"})
    assert resolve_engine("auto", LSTM, x, needs=needs) == "cuda-graph"
    assert resolve_engine("auto", GRU, x, needs=needs) == "cuda-graph"
    assert resolve_engine("auto", LSTM, x, needs=needs, projected=True) == "autograd"
    got = layer_results(kind, "auto", "cuda")
    assert len(graphed._entries) == 2
    assert_same([t.cpu() for t in got], [t.cpu() for t in layer_results(kind, "python", "cuda")], tol=1e-10)
    assert_same([t.cpu() for t in got], [t.cpu() for t in layer_results(kind, "autograd", "cuda")], tol=1e-10)


@needs_cuda
@pytest.mark.parametrize("options", [{}, dict(zoneout=0.2, layer_norm=True)], ids=["plain", "regularised"])
def test_on_cuda_a_compiled_layer_records_the_python_operator_instead_of_graphs(options):
    """torch.compile can't trace a CUDA graph's capture: under it ``auto`` runs the Python engine's operator, whose
    results eager's graphed loop equals (the lecture's GRU, which cuDNN lacks, and layer norm with zoneout)."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(4, 5, num_layers=2, **options).cuda().eval()
    x = torch.randn(6, 3, 4, device="cuda")
    eager = layer(x)[0]
    assert len(graphed._entries) == 2                          # eager: the graphed loop, one entry per layer
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x)[0], eager, rtol=1e-5, atol=1e-6)
