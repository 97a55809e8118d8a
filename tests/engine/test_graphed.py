"""The CUDA-graph engine (``engine="cuda-graph"`` on a GPU) against the Python BPTT engine it captures.

On the CPU :class:`EagerGraph` stands in for the CUDA graph, so the copying into static buffers, the cloning of
results and the reuse of entries are checked everywhere; on a GPU the same tests run the real capture.
"""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.cells.spec import RECURRENCES, recurrence
from rnnkit.engine import graphed, run_direction
from rnnkit.engine import run_bptt
from rnnkit.engine.sequence import lengths_mask

from graphed_helpers import (DEVICES, F64, assert_same, fresh_cache, leaves, needs_cuda,  # noqa: F401 (fresh_cache:
                             outputs_and_grads, problem)                                   # autouse)

MODES = tuple(r.kernel for r in RECURRENCES)          # the engine's kernel names


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias,masked", [(True, False), (False, True)])
@pytest.mark.parametrize("mode", MODES)
def test_matches_the_python_engine(mode, bias, masked, device):
    x, h0, c0, weights = problem(mode, device, bias=bias)
    mask = lengths_mask(torch.tensor([5, 2, 4], device=device), 5) if masked else None
    expected = outputs_and_grads(run_bptt, mode, x, h0, c0, weights, mask)
    assert_same(outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, mask), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_new_data_through_a_captured_entry(mode, device):
    """The second call of a shape replays the first's graph: it must read the new tensors, not the old."""
    graphed.run_graphed(recurrence(mode), *problem(mode, device, seed=1)[:3], problem(mode, device, seed=1)[3], None)
    x, h0, c0, weights = problem(mode, device, seed=2)
    got = outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, None)
    assert len(graphed._entries) == 1
    assert_same(got, outputs_and_grads(run_bptt, mode, x, h0, c0, weights, None))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_two_forwards_of_one_shape_before_their_backward(mode, device):
    """A stack's layers share a shape: the first forward's saved tensors must survive the second's replay."""
    first, second = problem(mode, device, input_size=3, seed=3), problem(mode, device, input_size=3, seed=4)

    def stacked(runner):
        x, h0, c0, w = first
        out1, _, _ = runner(recurrence(mode), x, h0, c0, w, None)
        _, h02, c02, w2 = second
        out2, h_n, _ = runner(recurrence(mode), out1, h02, c02, w2, None)
        loss = out2.square().sum() + out1.sin().sum() + h_n.sum()
        return [out1, out2, *torch.autograd.grad(loss, leaves(*first) + leaves(None, *second[1:]))]

    assert_same(stacked(graphed.run_graphed), stacked(run_bptt))


@pytest.mark.parametrize("device", DEVICES)
def test_inference_and_only_the_final_cell_used(device):
    x, h0, c0, weights = problem("lstm", device)
    with torch.no_grad():
        got = graphed.run_graphed(recurrence("lstm"), x, h0, c0, weights, None)
        expected = run_bptt(recurrence("lstm"), x, h0, c0, weights, None)
    assert_same(got, expected)
    _, _, c_n = graphed.run_graphed(recurrence("lstm"), x, h0, c0, weights, None)
    _, _, c_ref = run_bptt(recurrence("lstm"), x, h0, c0, weights, None)
    assert_same(torch.autograd.grad(c_n.sum(), weights[:2]), torch.autograd.grad(c_ref.sum(), weights[:2]))


@pytest.mark.parametrize("device", DEVICES)
def test_entries_are_bounded_and_evicted_ones_still_backpropagate(device, monkeypatch):
    monkeypatch.setattr(graphed, "MAX_ENTRIES", 2)
    runs = [problem("gru", device, T=T, seed=T) for T in (2, 3, 4)]
    outs = [graphed.run_graphed(recurrence("gru"), x, h0, c0, w, None)[0] for x, h0, c0, w in runs]
    assert len(graphed._entries) == 2
    loss = sum(o.sum() for o in outs)
    grads = torch.autograd.grad(loss, [w[1] for *_, w in runs])
    expected = torch.autograd.grad(sum(run_bptt(recurrence("gru"), x, h0, c0, w, None)[0].sum()
                                       for x, h0, c0, w in runs),
                                   [w[1] for *_, w in runs])
    assert_same(grads, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_entries_are_bounded_by_their_bytes_too(device, monkeypatch):
    runs = [problem("lstm", device, T=T, seed=T) for T in (2, 3, 4)]
    for x, h0, c0, w in runs:
        graphed.run_graphed(recurrence("lstm"), x, h0, c0, w, None)
    sizes = [e.nbytes for e in graphed._entries.values()]
    graphed._entries.clear()
    monkeypatch.setattr(graphed, "MAX_BYTES", sizes[1] + sizes[2])      # room for the last two only
    for x, h0, c0, w in runs:
        graphed.run_graphed(recurrence("lstm"), x, h0, c0, w, None)
    assert len(graphed._entries) == 2
    assert [k[6][0] for k in graphed._entries] == [3, 4]                  # x's T: the oldest went first
    monkeypatch.setattr(graphed, "MAX_BYTES", 0)                          # never below the newest entry
    graphed.run_graphed(recurrence("lstm"), *runs[0][:3], runs[0][3], None)
    assert len(graphed._entries) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_an_entry_made_under_inference_mode_does_not_serve_outside_it(device):
    """Tensors made under ``torch.inference_mode`` can't be written outside it: such calls get their own entry."""
    x, h0, c0, weights = problem("gru", device)
    with torch.inference_mode():
        inside = graphed.run_graphed(recurrence("gru"), x, h0, c0, weights, None)
    with torch.no_grad():
        outside = graphed.run_graphed(recurrence("gru"), x, h0, c0, weights, None)
        expected = run_bptt(recurrence("gru"), x, h0, c0, weights, None)
    assert len(graphed._entries) == 2
    assert_same(list(inside[:2]), list(expected[:2]))
    assert_same(list(outside[:2]), list(expected[:2]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru", "gru_reset_after"])
def test_gradcheck_through_a_reused_entry(mode, device):
    """gradcheck calls the engine many times at one shape: every call after the first replays the same entry."""
    x, h0, c0, weights = problem(mode, device, T=3, N=2, input_size=2, H=2)
    inputs = [t for t in (x, h0, c0, *weights) if t is not None]

    def f(*args):
        it = iter(args)
        xx, hh = next(it), next(it)
        cc = next(it) if mode == "lstm" else None
        w = tuple(next(it) for _ in range(4))
        out, h_n, c_n = graphed.run_graphed(recurrence(mode), xx, hh, cc, w, None)
        return (out, h_n) if c_n is None else (out, h_n, c_n)

    assert torch.autograd.gradcheck(f, inputs)
    assert len(graphed._entries) == 1


def test_the_engine_names_cuda_and_no_other_device():
    assert graphed.unavailable_reason(torch.zeros(1)) == "the CUDA-graph engine needs a CUDA tensor, not cpu"


@needs_cuda
@pytest.mark.parametrize("mode", MODES)
def test_fused_on_cuda_is_the_graphed_engine(mode, monkeypatch):
    calls = []
    real = graphed.run_graphed
    monkeypatch.setattr(graphed, "run_graphed", lambda *a: calls.append(1) or real(*a))
    x, h0, c0, weights = problem(mode, "cuda", dtype=torch.float32)
    out, _, _ = run_direction(mode, x, h0, c0, weights, engine="cuda-graph")
    assert calls == [1]
    ref, _, _ = run_direction(mode, x.detach().cpu(), h0.detach().cpu(),
                              None if c0 is None else c0.detach().cpu(),
                              tuple(None if w is None else w.detach().cpu() for w in weights), engine="python")
    torch.testing.assert_close(out.detach().cpu(), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="checkpoint_every needs the compiled engine"):
        run_direction(mode, x, h0, c0, weights, engine="cuda-graph", checkpoint_every=2)


@needs_cuda
@pytest.mark.parametrize("reset_after", [False, True])
def test_a_gru_layer_trains_on_cuda_as_on_the_cpu(reset_after):
    torch.manual_seed(0)
    cpu = rnnkit.GRU(6, 5, num_layers=2, bidirectional=True, reset_after=reset_after).double()
    gpu = rnnkit.GRU(6, 5, num_layers=2, bidirectional=True, reset_after=reset_after).double().cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(7, 3, 6, dtype=F64)
    lengths = torch.tensor([7, 3, 5])
    results = []
    for layer, xs in ((cpu, x), (gpu, x.cuda())):
        out, h_n = layer(xs, lengths=lengths.to(xs.device))
        (out.square().sum() + h_n.sum()).backward()
        results.append([out.cpu(), h_n.cpu()] + [p.grad.cpu() for p in layer.parameters()])
    assert_same(*results, tol=1e-10)


def test_steps_are_bucketed_within_an_eighth():
    assert [graphed.bucket(T) for T in (1, 5, 15, 16, 17, 35, 64, 65, 70, 200)] == \
        [1, 5, 15, 16, 18, 36, 64, 72, 72, 208]
    assert all(T <= graphed.bucket(T) <= T * 1.125 for T in range(1, 2000))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_lengths_between_buckets_share_the_buckets_entry(mode, device):
    """17 steps run in the entry of 18, the last masked out; 18 steps with lengths (a mask too) replay it."""
    x, h0, c0, weights = problem(mode, device, T=17)
    expected = outputs_and_grads(run_bptt, mode, x, h0, c0, weights, None)
    assert_same(outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, None), expected)
    (key, _), = graphed._entries.items()
    assert key[6] == (18, 3, 4)                                           # x's shape in the entry
    x, h0, c0, weights = problem(mode, device, T=18, seed=5)
    mask = lengths_mask(torch.tensor([18, 9, 17], device=device), 18)
    expected = outputs_and_grads(run_bptt, mode, x, h0, c0, weights, mask)
    assert_same(outputs_and_grads(graphed.run_graphed, mode, x, h0, c0, weights, mask), expected)
    assert len(graphed._entries) == 1
    with torch.no_grad():
        assert_same(graphed.run_graphed(recurrence(mode), x[:17], h0, c0, weights, None),
                    run_bptt(recurrence(mode), x[:17], h0, c0, weights, None))
