"""Weight drop on ``engine="torch"`` (QA of the Python API: the README said every engine, torch.nn's kernel refused
it). The kernel takes the dropped ``weight_hh`` as a tensor, drawn in the other engines' order, so with one seed it
computes the same outputs and gradients as rnnkit's loops (float64); the other regularisers stay refused there."""
from __future__ import annotations

import pytest
import torch

import rnnkit

D64 = torch.float64
LENGTHS = torch.tensor([7, 3, 5, 1])


def _layers(cls, engines, **kw):
    torch.manual_seed(0)
    first = cls(3, 5, num_layers=2, bidirectional=True, weight_drop=0.4, engine=engines[0], dtype=D64, **kw)
    rest = [cls(3, 5, num_layers=2, bidirectional=True, weight_drop=0.4, engine=e, dtype=D64, **kw)
            for e in engines[1:]]
    for layer in rest:
        layer.load_state_dict(first.state_dict())
    return [first, *rest]


def _run(layer, x, seed=3):
    layer.zero_grad()
    torch.manual_seed(seed)
    y, _ = layer(x, lengths=LENGTHS)
    (y * torch.linspace(-1, 1, y.shape[-1], dtype=D64)).pow(2).sum().backward()
    return y.detach(), [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("cls, kw", [(rnnkit.LSTM, {}), (rnnkit.LSTM, {"proj_size": 3}), (rnnkit.RNN, {}),
                                     (rnnkit.GRU, {"reset_after": True})], ids=["lstm", "lstm-proj", "rnn", "gru"])
def test_torch_engine_draws_and_computes_what_the_loops_do(cls, kw):
    x = torch.randn(7, 4, 3, dtype=D64)
    torch_layer, loop, twin = _layers(cls, ["torch", "python", "autograd"], **kw)
    y, grads = _run(torch_layer, x)
    for other in (loop, twin):
        y_other, grads_other = _run(other, x)
        torch.testing.assert_close(y, y_other, rtol=0, atol=1e-12)
        for g, g_other in zip(grads, grads_other):
            torch.testing.assert_close(g, g_other, rtol=0, atol=1e-11)
    y_again, _ = _run(torch_layer, x, seed=4)                     # a fresh mask for the next call
    assert (y_again - y).abs().max() > 1e-3
    torch_layer.eval()                                            # evaluation: the raw weights, deterministic
    assert torch.equal(torch_layer(x)[0], torch_layer(x)[0])
    raw = cls(3, 5, num_layers=2, bidirectional=True, engine="torch", dtype=D64, **kw)
    raw.load_state_dict(torch_layer.state_dict())
    torch.testing.assert_close(torch_layer(x)[0], raw.eval()(x)[0], rtol=0, atol=0)


def test_the_dropped_weight_reaches_the_raw_parameter_and_state_dict_keeps_torch_names():
    layer = rnnkit.LSTM(3, 5, weight_drop=0.5, engine="torch", dtype=D64)
    assert set(layer.state_dict()) == set(torch.nn.LSTM(3, 5).state_dict())
    y, grads = _run(layer, torch.randn(7, 4, 3, dtype=D64))
    hh = dict(zip([n for n, _ in layer.named_parameters()], grads))["weight_hh_l0"]
    dropped_share = (hh == 0).double().mean().item()               # whole entries of W dropped: zero gradient
    assert 0.35 < dropped_share < 0.65
