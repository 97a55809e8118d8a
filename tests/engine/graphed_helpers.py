"""What the CUDA-graph engine's tests share: the devices, a fresh entry cache, a random problem, one call's outputs
and gradients, and exact comparison."""
from __future__ import annotations

import pytest
import torch

from rnnkit.cells.spec import RECURRENCES, recurrence
from rnnkit.engine import graphed

GATES = {r.kernel: r.gates for r in RECURRENCES}     # the engine's kernel names -> gate blocks
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
F64 = torch.float64


@pytest.fixture(autouse=True)
def fresh_cache():
    graphed._entries.clear()
    yield
    graphed._entries.clear()


def problem(mode, device, T=5, N=3, input_size=4, H=3, bias=True, seed=0, dtype=F64):
    """``(x, h0, c0, weights)``: random leaves on ``device`` (``c0`` only for the LSTM)."""
    g = torch.Generator().manual_seed(seed)
    G = GATES[mode]

    def rnd(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.6).to(device).requires_grad_()

    weights = (rnd(G * H, input_size), rnd(G * H, H), rnd(G * H) if bias else None, rnd(G * H) if bias else None)
    return rnd(T, N, input_size), rnd(N, H), rnd(N, H) if mode == "lstm" else None, weights


def leaves(x, h0, c0, weights):
    return [t for t in (x, h0, c0, *weights) if t is not None]


def outputs_and_grads(runner, mode, x, h0, c0, weights, mask, seed=1, reg=None, wrt=None):
    """``runner``'s outputs, then the gradients of a fixed random loss of them w.r.t. ``wrt`` (default: the
    problem's leaves). ``reg``: a Regularisation, passed where given."""
    out, h_n, c_n = runner(recurrence(mode), x, h0, c0, weights, mask, **({} if reg is None else {"reg": reg}))
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)).sum() + h_n.square().sum()
    if c_n is not None:
        loss = loss + c_n.sin().sum()
    grads = torch.autograd.grad(loss, leaves(x, h0, c0, weights) if wrt is None else wrt)
    return [out, h_n] + ([] if c_n is None else [c_n]) + list(grads)


def assert_same(a, b, tol=1e-12):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)
