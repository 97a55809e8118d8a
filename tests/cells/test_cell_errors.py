"""The cells refuse bad input with a message that names the cell, the argument and the shapes."""
from __future__ import annotations

import pytest
import torch

from rnnkit.cells import GRUCell, LSTMCell, RNNCell

ALL_CELLS = [("RNNCell", lambda: RNNCell(3, 4)), ("LSTMCell", lambda: LSTMCell(3, 4)),
             ("GRUCell", lambda: GRUCell(3, 4))]


@pytest.mark.parametrize("name,factory", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_wrong_feature_size(name, factory):
    with pytest.raises(ValueError, match=rf"{name} expects input of shape \(batch, 3\), got \(2, 5\)"):
        factory()(torch.zeros(2, 5))


@pytest.mark.parametrize("name,factory", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_wrong_input_rank(name, factory):
    with pytest.raises(ValueError, match=rf"{name} expects input of shape \(batch, 3\), got \(4, 2, 3\)"):
        factory()(torch.zeros(4, 2, 3))


@pytest.mark.parametrize("name,factory", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_input_not_a_tensor(name, factory):
    with pytest.raises(TypeError, match=rf"{name} expects a Tensor input, got list"):
        factory()([[0.0, 0.0, 0.0]])


@pytest.mark.parametrize("name,factory", [c for c in ALL_CELLS if c[0] != "LSTMCell"],
                         ids=["RNNCell", "GRUCell"])
def test_wrong_state_shape(name, factory):
    cell = factory()
    with pytest.raises(ValueError, match=rf"{name}: state h must have shape \(2, 4\), got \(2, 5\)"):
        cell(torch.zeros(2, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=rf"{name}: state h must have shape \(2, 4\), got \(3, 4\)"):
        cell(torch.zeros(2, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=rf"{name}: state h must have shape \(2, 4\), got tuple"):
        cell(torch.zeros(2, 3), (torch.zeros(2, 4),))


def test_lstm_wrong_state():
    cell = LSTMCell(3, 4)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"LSTMCell: state must be a tuple \(h, c\)"):
        cell(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: state must be a tuple \(h, c\)"):
        cell(x, (torch.zeros(2, 4),) * 3)
    with pytest.raises(ValueError, match=r"LSTMCell: state c must have shape \(2, 4\), got \(2, 3\)"):
        cell(x, (torch.zeros(2, 4), torch.zeros(2, 3)))
    with pytest.raises(ValueError, match=r"LSTMCell: state h must have shape \(2, 4\), got \(1, 4\)"):
        cell(x, (torch.zeros(1, 4), torch.zeros(2, 4)))


@pytest.mark.parametrize("cls", [RNNCell, LSTMCell, GRUCell])
@pytest.mark.parametrize("args,what,value", [
    ((0, 4), "input_size", "0"), ((3, -1), "hidden_size", "-1"), ((3, 2.0), "hidden_size", "2.0"),
    ((True, 4), "input_size", "True")])
def test_non_positive_sizes(cls, args, what, value):
    with pytest.raises(ValueError, match=rf"{what} must be a positive integer, got {value}"):
        cls(*args)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"nonlinearity must be one of \('tanh', 'relu'\), got 'sigmoid'"):
        RNNCell(3, 4, nonlinearity="sigmoid")


@pytest.mark.parametrize("name,factory", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_dtypes_are_named(name, factory):
    """QA: these reached torch's matmul ("mat1 and mat2 must have the same dtype")."""
    cell = factory()
    with pytest.raises(TypeError, match=rf"{name}: input dtype torch.float64 does not match the parameters' dtype "
                                        rf"torch.float32; convert one with"):
        cell(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=rf"{name}: input dtype torch.int64 is not floating point"):
        cell(torch.zeros(2, 3, dtype=torch.long))
    state = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=rf"{name}: state h dtype torch.float64 does not match the input's dtype "
                                        rf"torch.float32"):
        cell(torch.zeros(2, 3), (state, state) if name == "LSTMCell" else state)
    with torch.autocast("cpu", dtype=torch.bfloat16):                 # autocast casts the operands itself
        out = cell(torch.zeros(2, 3, dtype=torch.bfloat16))
    assert (out[0] if isinstance(out, tuple) else out).shape == (2, 4)
