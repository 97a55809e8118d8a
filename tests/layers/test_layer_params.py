"""Layer parameters as torch.nn names and shapes them, state_dicts both ways, initialisation, and conversion to
and from torch.nn modules."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit

input_size, H, T, N = 3, 4, 7, 4
F64_TOL = dict(rtol=1e-9, atol=1e-11)


# --------------------------------------------------------------------------- parameters and state_dict

def _expected_shapes(G, input_size, hidden, layers, bidir, bias=True):
    out = {}
    for k in range(layers):
        for suffix in ("", "_reverse")[: 2 if bidir else 1]:
            layer_in = input_size if k == 0 else hidden * (2 if bidir else 1)
            out[f"weight_ih_l{k}{suffix}"] = (G * hidden, layer_in)
            out[f"weight_hh_l{k}{suffix}"] = (G * hidden, hidden)
            if bias:
                out[f"bias_ih_l{k}{suffix}"] = (G * hidden,)
                out[f"bias_hh_l{k}{suffix}"] = (G * hidden,)
    return out


def test_lstm_parameter_dict_written_out():
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True)
    assert {n: tuple(p.shape) for n, p in layer.named_parameters()} == {
        "weight_ih_l0": (16, 3), "weight_hh_l0": (16, 4), "bias_ih_l0": (16,), "bias_hh_l0": (16,),
        "weight_ih_l0_reverse": (16, 3), "weight_hh_l0_reverse": (16, 4),
        "bias_ih_l0_reverse": (16,), "bias_hh_l0_reverse": (16,),
        "weight_ih_l1": (16, 8), "weight_hh_l1": (16, 4), "bias_ih_l1": (16,), "bias_hh_l1": (16,),
        "weight_ih_l1_reverse": (16, 8), "weight_hh_l1_reverse": (16, 4),
        "bias_ih_l1_reverse": (16,), "bias_hh_l1_reverse": (16,),
    }


LAYER_PAIRS = pytest.mark.parametrize("ours,theirs,G,args", [
    (lambda: rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True),
     lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), 4, (3, 4, 2, True)),
    (lambda: rnnkit.GRU(2, 5, num_layers=3, bias=False),
     lambda: nn.GRU(2, 5, num_layers=3, bias=False), 3, (2, 5, 3, False, False)),
    (lambda: rnnkit.GRU(2, 5, reset_after=True, bidirectional=True),
     lambda: nn.GRU(2, 5, bidirectional=True), 3, (2, 5, 1, True)),
    (lambda: rnnkit.RNN(3, 2, num_layers=3, bidirectional=True, nonlinearity="relu"),
     lambda: nn.RNN(3, 2, num_layers=3, bidirectional=True, nonlinearity="relu"), 1, (3, 2, 3, True)),
    (lambda: rnnkit.RNN(1, 6), lambda: nn.RNN(1, 6), 1, (1, 6, 1, False)),
], ids=["lstm_2_bi", "gru_3_nobias", "gru_ra_bi", "rnn_3_bi", "rnn_1"])


@LAYER_PAIRS
def test_parameter_names_and_shapes(ours, theirs, G, args):
    a, b = ours(), theirs()
    shapes = {n: tuple(p.shape) for n, p in a.named_parameters()}
    assert shapes == _expected_shapes(G, *args)
    assert list(shapes.items()) == [(n, tuple(p.shape)) for n, p in b.named_parameters()]   # same order too


@LAYER_PAIRS
def test_state_dict_round_trip_with_torch(ours, theirs, G, args):
    a, b = ours(), theirs()
    b.load_state_dict(a.state_dict(), strict=True)              # rnnkit -> torch.nn
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    c = theirs()
    a.load_state_dict(c.state_dict(), strict=True)              # torch.nn -> rnnkit
    for k, v in c.state_dict().items():
        assert torch.equal(a.state_dict()[k], v), k
    assert list(a.state_dict()) == list(c.state_dict())


def test_default_initialisation_is_pytorchs_uniform_bound():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 16, num_layers=2)
    for name, p in layer.named_parameters():
        assert p.abs().max() <= 0.25, name
        assert p.abs().max() > 0.2, name


def test_lstm_forget_bias():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True, forget_bias=1.0)
    for k in range(2):
        for suffix in ("", "_reverse"):
            b_ih, b_hh = getattr(layer, f"bias_ih_l{k}{suffix}"), getattr(layer, f"bias_hh_l{k}{suffix}")
            assert torch.equal(b_ih[4:8], torch.ones(4))
            assert torch.equal(b_hh[4:8], torch.zeros(4))
            assert b_ih[:4].abs().max() < 0.5 and (b_ih[8:] != 1).all()
    assert torch.equal((layer.bias_ih_l1 + layer.bias_hh_l1)[4:8], torch.ones(4))
    plain = rnnkit.LSTM(3, 4)
    assert not torch.equal(plain.bias_ih_l0[4:8], torch.ones(4))
    rnnkit.LSTM(3, 4, bias=False, forget_bias=1.0)             # no biases: nothing to set, no error


# --------------------------------------------------------------------------- to_torch / from_torch

@pytest.mark.parametrize("cls,torch_cls,kw", [
    (rnnkit.LSTM, nn.LSTM, dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)),
    (rnnkit.GRU, nn.GRU, dict(num_layers=1, bias=False)),
    (rnnkit.RNN, nn.RNN, dict(num_layers=2, nonlinearity="relu", batch_first=True)),
], ids=["lstm", "gru", "rnn"])
def test_from_torch(cls, torch_cls, kw):
    theirs = torch_cls(input_size, H, dtype=torch.float64, **kw).eval()
    ours = cls.from_torch(theirs, engine="autograd")
    assert isinstance(ours, cls) and ours.engine == "autograd"
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    if cls is rnnkit.GRU:
        assert ours.reset_after is True
    if cls is rnnkit.RNN:
        assert ours.nonlinearity == "relu"
    for (na, a), (nb, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert na == nb and a.dtype == torch.float64 and torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    x = (torch.randn(N, T, input_size, dtype=torch.float64) if theirs.batch_first
         else torch.randn(T, N, input_size, dtype=torch.float64))
    ours.eval()
    a, b = ours(x), theirs(x)
    torch.testing.assert_close(a[0], b[0], **F64_TOL)
    back = ours.to_torch()                                      # and back again, configuration included
    assert type(back) is torch_cls
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"):
        assert getattr(back, attr) == getattr(theirs, attr), attr


def test_from_torch_wrong_class():
    with pytest.raises(TypeError, match=r"LSTM.from_torch expects a torch.nn.LSTM, got GRU"):
        rnnkit.LSTM.from_torch(nn.GRU(3, 4))


def test_to_torch_is_a_copy():
    ours = rnnkit.LSTM(input_size, H)
    theirs = ours.to_torch()
    with torch.no_grad():
        theirs.weight_ih_l0.zero_()
    assert ours.weight_ih_l0.abs().max() > 0


def test_to_torch_says_which_training_regularisers_it_drops():
    """Weight drop and the dropouts are off in evaluation, so the copy computes the layer's evaluation; it trains
    without them, which to_torch() says rather than leaving silently."""
    ours = rnnkit.LSTM(input_size, H, 2, weight_drop=0.5, recurrent_dropout=0.3, variational_dropout=0.2).eval()
    with pytest.warns(UserWarning, match=r"torch.nn's layers have no recurrent_dropout, variational_dropout, "
                                         r"weight_drop; the copy computes this layer's evaluation exactly"):
        theirs = ours.to_torch()
    x = torch.randn(5, 2, input_size)
    assert torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-6)


def test_lecture_gru_to_torch_raises():
    with pytest.raises(ValueError, match=r"reset_after=False.*Use reset_after=True"):
        rnnkit.GRU(input_size, H).to_torch()
    assert rnnkit.GRU(input_size, H).reset_after is False       # the lecture's GRU is the default
