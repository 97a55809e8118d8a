"""Every bad input to the layers gets an error naming what was expected and what came."""
from __future__ import annotations

import re

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit

input_size, H = 3, 4
LAYERS = {
    "RNN": lambda **kw: rnnkit.RNN(input_size, H, **kw),
    "LSTM": lambda **kw: rnnkit.LSTM(input_size, H, **kw),
    "GRU": lambda **kw: rnnkit.GRU(input_size, H, **kw),
}
each_layer = pytest.mark.parametrize("name", list(LAYERS))


def _hx(name, shape, dtype=torch.float32, device="cpu"):
    h = torch.zeros(shape, dtype=dtype, device=device)
    return (h, h.clone()) if name == "LSTM" else h


# --------------------------------------------------------------------------- the input tensor

@each_layer
@pytest.mark.parametrize("shape", [(5,), (2, 5, 2, 3)], ids=["1d", "4d"])
def test_wrong_rank(name, shape):
    expected = (f"{name} expects a 3-D input (seq_len, batch, 3) or (batch, seq_len, 3) with batch_first=True, "
                f"or 2-D unbatched; got shape {shape}")
    with pytest.raises(ValueError, match=re.escape(expected)):
        LAYERS[name]()(torch.zeros(shape))


@each_layer
def test_wrong_feature_size(name):
    with pytest.raises(ValueError, match=rf"{name} expects input_size=3 features, got 5 \(input shape \(7, 2, 5\)\)"):
        LAYERS[name]()(torch.zeros(7, 2, 5))
    with pytest.raises(ValueError, match=rf"{name} expects input_size=3 features, got 2 \(input shape"):
        LAYERS[name]()(torch.zeros(6, 2))                              # unbatched
    with pytest.raises(ValueError, match=rf"{name} expects input_size=3 features, got 4 \(input shape"):
        LAYERS[name](batch_first=True)(torch.zeros(2, 7, 4))


@pytest.mark.parametrize("shape,batch_first", [((6, 2), False), ((2, 7, 4), True)], ids=["unbatched", "batch_first"])
def test_wrong_feature_size_message_shows_the_callers_shape(shape, batch_first):
    with pytest.raises(ValueError, match=re.escape(f"(input shape {shape})")):
        rnnkit.LSTM(input_size, H, batch_first=batch_first)(torch.zeros(shape))


@each_layer
def test_input_not_a_tensor(name):
    with pytest.raises(TypeError, match=rf"{name} expects a Tensor or PackedSequence input, got list"):
        LAYERS[name]()([[0.0] * 3] * 4)


@each_layer
@pytest.mark.parametrize("shape", [(0, 2, 3), (0, 3)], ids=["T0", "unbatched_T0"])
def test_sequences_of_no_steps(name, shape):
    with pytest.raises(ValueError, match=rf"{name} got an input of no steps, shape {re.escape(str(shape))}: it needs "
                                         r"at least one step"):
        LAYERS[name]()(torch.zeros(shape))


@each_layer
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("engine", ["auto", "compiled", "python", "autograd"])
def test_an_empty_batch_gives_empty_outputs_as_torch_nn(name, batch_first, engine):
    """N = 0 (a filtered batch that came out empty): torch.nn returns empty outputs and states; so do we, with
    lengths too, and ``step`` agrees."""
    ours = LAYERS[name](num_layers=2, bidirectional=True, batch_first=batch_first, engine=engine, zoneout=0.1)
    theirs = getattr(torch.nn, name)(input_size, H, 2, batch_first=batch_first, bidirectional=True)
    x = torch.zeros((0, 5, input_size) if batch_first else (5, 0, input_size))
    for lengths in (None, torch.zeros(0, dtype=torch.long)):
        out, state = ours(x, lengths=lengths)
        want_out, want_state = theirs(x)
        assert out.shape == want_out.shape
        for s, w in zip(state if name == "LSTM" else [state], want_state if name == "LSTM" else [want_state]):
            assert s.shape == w.shape == (4, 0, H)
    one_way = LAYERS[name](num_layers=2)
    h, _ = one_way.step(torch.zeros(0, input_size))
    assert h.shape == (0, H)
    x.requires_grad_()                       # a training loop's backward (QA: "does not require grad")
    out, _ = ours(x)
    out.sum().backward()
    assert x.grad.shape == x.shape and all(p.grad is not None and not p.grad.any() for p in ours.parameters())


@each_layer
def test_step_checks_its_input_as_forward_does(name):
    layer = LAYERS[name]()
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            with pytest.raises(TypeError, match=rf"{name}.step: input dtype torch.float64 does not match the "
                                                r"parameters' dtype torch.float32"):
                layer.step(torch.zeros(2, input_size, dtype=torch.float64))
            with pytest.raises(TypeError, match=rf"{name}.step: input dtype torch.int64 is not floating point"):
                layer.step(torch.zeros(2, input_size, dtype=torch.long))
            with pytest.raises(TypeError, match=rf"{name}.step expects a Tensor x \(N, 3\), got list"):
                layer.step([[0.0] * input_size])


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.GRU])
@pytest.mark.parametrize("value", [0, 2])
def test_proj_size_on_rnn_and_gru_is_refused_as_torch_does(cls, value):
    with pytest.raises(ValueError, match=r"proj_size argument is only supported for LSTM, not RNN or GRU"):
        cls(input_size, H, proj_size=value)


@each_layer
def test_integer_input(name):
    with pytest.raises(TypeError, match=rf"{name}: input dtype torch.int64 is not floating point; convert it with "
                                        r"\.to\(torch.float32\) \(token ids go through an nn.Embedding first\)"):
        LAYERS[name]()(torch.zeros(5, 2, input_size, dtype=torch.long))


@each_layer
def test_mismatched_dtype(name):
    with pytest.raises(TypeError, match=rf"{name}: input dtype torch.float64 does not match the parameters' "
                                        r"dtype torch.float32; convert one with \.to\(torch.float32\)"):
        LAYERS[name]()(torch.zeros(5, 2, input_size, dtype=torch.float64))
    layer = LAYERS[name](dtype=torch.float64)
    with pytest.raises(TypeError, match=r"input dtype torch.float32 does not match the parameters' dtype "
                                        r"torch.float64"):
        layer(torch.zeros(5, 2, input_size))


def _meta_works() -> bool:
    try:
        rnnkit.LSTM(input_size, H, device="meta")(torch.zeros(2, 1, input_size, device="meta"))
        return True
    except Exception:        # noqa: BLE001 - only deciding whether the meta device can stand in for a GPU
        return False


OTHER_DEVICE = "cuda" if torch.cuda.is_available() else ("meta" if _meta_works() else None)
needs_other_device = pytest.mark.skipif(OTHER_DEVICE is None,
                                        reason="no CUDA and the meta device does not run the layers")


@needs_other_device
@each_layer
def test_mismatched_device(name):
    other = OTHER_DEVICE
    with pytest.raises(ValueError, match=rf"{name}: input is on cpu but the parameters are on {other}"):
        LAYERS[name](device=other)(torch.zeros(5, 2, input_size))
    with pytest.raises(ValueError, match=rf"{name}: input is on {other}.* but the parameters are on cpu"):
        LAYERS[name]()(torch.zeros(5, 2, input_size, device=other))
    layer = LAYERS[name](device=other)
    with pytest.raises(ValueError, match=rf"{name}: h_0 is on cpu but the input is on {other}"):
        layer(torch.zeros(5, 2, input_size, device=other), _hx(name, (1, 2, H)))


# --------------------------------------------------------------------------- the initial state

@each_layer
@pytest.mark.parametrize("bad", [(2, 3, H), (4, 2, H), (4, 3, H + 1), (4, 3, H, 1)],
                         ids=["layers", "batch", "hidden", "rank"])
def test_hx_wrong_shape(name, bad):
    layer = LAYERS[name](num_layers=2, bidirectional=True)
    expected = (f"{name}: h_0 must have shape (4, 3, 4) (num_layers * num_directions, batch, hidden_size), "
                f"got {bad}")
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(torch.zeros(5, 3, input_size), _hx(name, bad))


@each_layer
def test_unbatched_hx_wrong_shape(name):
    layer = LAYERS[name]()
    with pytest.raises(ValueError, match=re.escape(f"{name}: h_0 must have shape (1, 1, 4)")):
        layer(torch.zeros(5, input_size), _hx(name, (1, H + 1)))


@each_layer
def test_hx_wrong_shape_message_names_both_shapes(name):
    layer = LAYERS[name](num_layers=2, bidirectional=True)
    with pytest.raises(ValueError) as info:
        layer(torch.zeros(5, 3, input_size), _hx(name, (2, 3, H)))
    msg = str(info.value)
    assert "(4, 3, 4)" in msg and "got (2, 3, 4)" in msg and "num_layers * num_directions" in msg


@each_layer
def test_unbatched_input_with_batched_hx(name):
    with pytest.raises(ValueError, match=r"h_0"):
        LAYERS[name]()(torch.zeros(5, input_size), _hx(name, (1, 1, H)))


def test_lstm_c0_wrong_shape():
    layer = rnnkit.LSTM(input_size, H)
    with pytest.raises(ValueError, match=r"LSTM: c_0 must have shape \(1, 2, 4\).*got \(1, 2, 5\)"):
        layer(torch.zeros(5, 2, input_size), (torch.zeros(1, 2, H), torch.zeros(1, 2, H + 1)))


def test_hx_wrong_count():
    x = torch.zeros(5, 2, input_size)
    h = torch.zeros(1, 2, H)
    with pytest.raises(ValueError, match=r"LSTM: hx must be a tuple \(h_0, c_0\), got Tensor"):
        rnnkit.LSTM(input_size, H)(x, h)
    with pytest.raises(ValueError, match=r"LSTM: hx must be a tuple \(h_0, c_0\), got a sequence of 3"):
        rnnkit.LSTM(input_size, H)(x, (h, h, h))
    with pytest.raises(ValueError, match=r"LSTM: hx must be a tuple \(h_0, c_0\), got a sequence of 1"):
        rnnkit.LSTM(input_size, H)(x, [h])
    with pytest.raises(ValueError, match=r"GRU: hx must be one Tensor h_0, got a sequence of 2"):
        rnnkit.GRU(input_size, H)(x, (h, h))
    with pytest.raises(ValueError, match=r"RNN: hx must be one Tensor h_0, got a sequence of 1"):
        rnnkit.RNN(input_size, H)(x, [h])


def test_hx_not_a_tensor():
    x = torch.zeros(5, 2, input_size)
    h = torch.zeros(1, 2, H)
    with pytest.raises(TypeError, match=r"GRU: h_0 must be a Tensor, got str"):
        rnnkit.GRU(input_size, H)(x, "h0")
    with pytest.raises(TypeError, match=r"LSTM: c_0 must be a Tensor, got list"):
        rnnkit.LSTM(input_size, H)(x, (h, [[0.0] * H] * 2))


@each_layer
def test_hx_wrong_dtype(name):
    with pytest.raises(TypeError, match=rf"{name}: h_0 dtype torch.float64 does not match the input's dtype "
                                        r"torch.float32"):
        LAYERS[name]()(torch.zeros(5, 2, input_size), _hx(name, (1, 2, H), dtype=torch.float64))


# --------------------------------------------------------------------------- lengths

@each_layer
def test_lengths_wrong_count(name):
    with pytest.raises(ValueError, match=rf"{name}: got 2 lengths for a batch of 3 sequences"):
        LAYERS[name]()(torch.zeros(5, 3, input_size), lengths=[5, 4])
    with pytest.raises(ValueError, match=rf"{name}: got 4 lengths for a batch of 3 sequences"):
        LAYERS[name]()(torch.zeros(5, 3, input_size), lengths=torch.tensor([5, 4, 3, 2]))


@each_layer
@pytest.mark.parametrize("lengths,lo,hi,extra", [
    ([5, 0, 3], 0, 5, r" \(empty sequences are not allowed\)"),
    ([5, 6, 3], 3, 6, ""),
    ([-1, 2, 3], -1, 3, r" \(empty sequences are not allowed\)"),
], ids=["zero", "too_long", "negative"])
def test_lengths_out_of_range(name, lengths, lo, hi, extra):
    with pytest.raises(ValueError, match=rf"{name}: lengths must be in 1\.\.5 \(the input's sequence length\); "
                                         rf"got values from {lo} to {hi}{extra}"):
        LAYERS[name]()(torch.zeros(5, 3, input_size), lengths=lengths)
    with pytest.raises(ValueError, match=r"lengths must be in 1\.\.5"):
        LAYERS[name]()(torch.zeros(5, 3, input_size), lengths=torch.tensor(lengths))


@each_layer
def test_lengths_not_integers(name):
    x = torch.zeros(5, 3, input_size)
    with pytest.raises(TypeError, match=rf"{name}: lengths must be integers, got a tensor of dtype torch.float32"):
        LAYERS[name]()(x, lengths=torch.tensor([5.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=rf"{name}: lengths must be integers, got a tensor of dtype torch.bool"):
        LAYERS[name]()(x, lengths=torch.tensor([True, True, True]))
    with pytest.raises(TypeError, match=rf"{name}: lengths must be integers, got 2.0"):
        LAYERS[name]()(x, lengths=[5, 2.0, 3])
    with pytest.raises(TypeError, match=rf"{name}: lengths must be integers, got '3'"):
        LAYERS[name]()(x, lengths=[5, 2, "3"])


def test_numpy_integer_lengths_are_integers():
    np = pytest.importorskip("numpy")
    torch.manual_seed(0)
    layer = rnnkit.GRU(input_size, H)
    x = torch.randn(5, 3, input_size)
    want = layer(x, lengths=[5, 2, 3])[0]
    assert torch.equal(layer(x, lengths=np.array([5, 2, 3]))[0], want)
    assert torch.equal(layer(x, lengths=[np.int64(5), 2, 3])[0], want)


def test_lengths_wrong_rank_and_with_packed_input():
    layer = rnnkit.GRU(input_size, H)
    with pytest.raises(ValueError, match=r"GRU: lengths must be 1-D \(one per sequence\), got shape \(3, 1\)"):
        layer(torch.zeros(5, 3, input_size), lengths=torch.tensor([[5], [2], [3]]))
    packed = pack_padded_sequence(torch.zeros(5, 3, input_size), [5, 3, 2])
    with pytest.raises(ValueError, match=r"GRU: pass lengths or a PackedSequence, not both"):
        layer(packed, lengths=[5, 3, 2])


def test_lengths_accept_int_tensors_and_lists_alike():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(input_size, H)
    x = torch.randn(5, 3, input_size)
    a = layer(x, lengths=[5, 2, 3])[0]
    for lengths in (torch.tensor([5, 2, 3]), torch.tensor([5, 2, 3], dtype=torch.int32), (5, 2, 3)):
        assert torch.equal(layer(x, lengths=lengths)[0], a)


# --------------------------------------------------------------------------- the constructor

@each_layer
@pytest.mark.parametrize("dropout", [-0.1, 1.5, "0.5", True], ids=["neg", "big", "str", "bool"])
def test_dropout_outside_unit_interval(name, dropout):
    with pytest.raises(ValueError, match=rf"dropout must be a number in \[0, 1\], got {dropout!r}"):
        LAYERS[name](dropout=dropout)


@each_layer
def test_dropout_in_range_is_accepted(name):
    assert LAYERS[name](dropout=0).dropout == 0.0
    np = pytest.importorskip("numpy")
    layer = LAYERS[name](num_layers=2, dropout=np.float32(0.25), weight_drop=np.float32(0.5), zoneout=np.float64(0.1))
    assert (layer.dropout, layer.options.weight_drop, layer.options.zoneout_h) == (0.25, 0.5, 0.1)
    assert LAYERS[name](num_layers=2, dropout=0.999).dropout == 0.999


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU], ids=["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kwargs,what,value", [
    (dict(input_size=0, hidden_size=4), "input_size", "0"),
    (dict(input_size=3, hidden_size=-2), "hidden_size", "-2"),
    (dict(input_size=3, hidden_size=4.0), "hidden_size", "4.0"),
    (dict(input_size=3, hidden_size=4, num_layers=0), "num_layers", "0"),
    (dict(input_size=3, hidden_size=4, num_layers=True), "num_layers", "True"),
], ids=["input0", "hidden_neg", "hidden_float", "layers0", "layers_bool"])
def test_non_positive_sizes(cls, kwargs, what, value):
    with pytest.raises(ValueError, match=rf"{what} must be a positive integer, got {value}"):
        cls(**kwargs)


@each_layer
def test_unknown_engine(name):
    with pytest.raises(ValueError, match=r"engine must be one of \(.*\), got 'cudnn'") as info:
        LAYERS[name](engine="cudnn")
    for engine in ("auto", "compiled", "cuda-graph", "python", "autograd", "torch"):
        assert repr(engine) in str(info.value)


def test_torch_engine_refuses_the_lecture_gru():
    with pytest.raises(ValueError, match=r"engine='torch' runs torch.nn's kernels, which don't compute the "
                                         r"lecture's GRU.*reset_after=True"):
        rnnkit.GRU(input_size, H, engine="torch")
    assert rnnkit.GRU(input_size, H, engine="torch", reset_after=True).engine == "torch"


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        rnnkit.RNN(input_size, H, nonlinearity="sigmoid")
