"""MinGRU / MinLSTM under the tools that trace or transform a call (torch.export, torch.compile, jit.trace,
torch.func), a second backward, an empty batch, and the same argument checks as rnnkit's other layers (QA of the
Python API). ``scan="auto"`` runs plain operators where a call is traced; the numbers are the eager layer's."""
from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch.func import functional_call, grad

from rnnkit.engine import scan as S
from rnnkit.layers.checks import InputError, InputTypeError
from rnnkit.layers.minimal import MinGRU, MinLSTM

F64 = torch.float64
KINDS = [MinGRU, MinLSTM]
LENGTHS = torch.tensor([6, 3, 1])
HAS_COMPILED = S.compiled_unavailable_reason(torch.zeros(1)) is None
HAND_WRITTEN = ["compiled", "torch"] if HAS_COMPILED else ["torch"]


def layer_and_input(cls, **kw):
    torch.manual_seed(0)
    return cls(3, 4, num_layers=2, bidirectional=True, **kw).eval(), torch.randn(6, 3, 3)


@pytest.mark.parametrize("cls", KINDS)
def test_export_compile_and_trace_give_the_eager_numbers(cls):
    layer, x = layer_and_input(cls)
    for lengths in (None, LENGTHS):
        kwargs = {} if lengths is None else {"lengths": lengths}
        eager = layer(x, **kwargs)
        exported = torch.export.export(layer, (x,), kwargs).module()(x, **kwargs)
        compiled = torch.compile(layer, fullgraph=True, backend="eager")(x, **kwargs)
        for out in (exported, compiled):
            torch.testing.assert_close(out, eager, rtol=0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)             # jit.save / jit.load: still torch's API
        traced = torch.jit.trace(layer, (x,))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)              # no Python autograd.Function in the graph
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    torch.testing.assert_close(loaded(x), layer(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", KINDS)
def test_torch_func_grad_equals_backward(cls):
    layer, x = layer_and_input(cls, dtype=F64)
    x = x.double()
    params = {k: v.detach() for k, v in layer.named_parameters()}
    by_func = grad(lambda p: functional_call(layer, p, (x, None, LENGTHS))[0].pow(2).sum())(params)
    layer(x, lengths=LENGTHS)[0].pow(2).sum().backward()
    for name, p in layer.named_parameters():
        torch.testing.assert_close(by_func[name], p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("scan", HAND_WRITTEN)
def test_a_second_backward_names_the_scans_that_have_one(cls, scan):
    layer, x = layer_and_input(cls, dtype=F64, scan=scan)
    x = x.double().requires_grad_()
    g, = torch.autograd.grad(layer(x)[0].pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"second backward .* scan='autograd' \(or 'log' with log_space=True\)"):
        g.pow(2).sum().backward()
    first, = torch.autograd.grad(layer(x)[0].pow(2).sum(), x)           # the first-order numbers are unchanged
    torch.testing.assert_close(g.detach(), first, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", KINDS)
def test_scan_autograd_passes_gradgradcheck(cls):
    torch.manual_seed(1)
    layer = cls(2, 3, scan="autograd", dtype=F64)
    x = torch.randn(4, 2, 2, dtype=F64, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=F64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    assert torch.autograd.gradgradcheck(lambda x, h0: layer(x, h0, lengths=lengths), (x, h0))


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_an_empty_batch_gives_empty_outputs(cls, batch_first):
    layer = cls(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn(0, 6, 3) if batch_first else torch.randn(6, 0, 3)
    for lengths in (None, torch.zeros(0, dtype=torch.long)):
        out, h_n = layer(x, lengths=lengths)
        assert out.shape == ((0, 6, 8) if batch_first else (6, 0, 8)) and h_n.shape == (4, 0, 4)
    out, state = cls(3, 4, num_layers=2).step(torch.randn(0, 3))
    assert out.shape == (0, 4) and state.shape == (2, 0, 4)
    x.requires_grad_()                       # in autograd's graph, as torch.nn's outputs are
    layer(x)[0].sum().backward()
    assert x.grad.shape == x.shape and all(p.grad is not None and not p.grad.any() for p in layer.parameters())


def test_step_and_forward_take_the_same_inputs_as_the_other_layers():
    layer = MinGRU(3, 4, num_layers=2)
    x = torch.randn(2, 3)
    expected, _ = layer.step(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):                  # forward accepts it, so does step
        out, state = layer.step(x.bfloat16())
    assert out.dtype == torch.float32 and (out - expected).abs().max() < 2e-2
    with pytest.raises(InputError, match=r"MinGRU.step: x must be \(N, 3\), got shape \(2, 5\)"):
        layer.step(torch.randn(2, 5))
    with pytest.raises(RuntimeError):                                  # InputError is a RuntimeError too
        layer.step(torch.randn(2, 5))
    with pytest.raises(InputTypeError, match="MinGRU expects a Tensor input, got list"):
        layer([[1.0]])
    with pytest.raises(TypeError, match="MinLSTM: unexpected keyword argument 'zoneout'"):
        MinLSTM(3, 4, zoneout=0.1)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        MinGRU(3, 4, dropout=0.5)
