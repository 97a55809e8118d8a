"""Weight drop's product straight from the hash (rnnkit.engine.weight_drop, csrc/masks.cpp's masked_scale): the same
draw, bits and gradient as the weight times masks.bernoulli's mask, with and without the extension; no mask is
kept for the backward, and the product comes from the engine's buffer pool."""
from __future__ import annotations

import pytest
import torch

from rnnkit.engine import build, masks
from rnnkit.engine.weight_drop import drop_weight

pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def through_a_mask(w: torch.Tensor, p: float) -> torch.Tensor:
    """The definition: the weight times the dropout mask (0 or 1/(1-p)) that masks.bernoulli draws."""
    return w * masks.bernoulli(w.shape, 1.0 - p, w.device, w.dtype, value=1.0 / (1.0 - p))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_weight_equals_the_weight_times_the_mask_to_the_bit(dtype, p):
    w = torch.randn(800, 200, dtype=dtype, requires_grad=True)
    g = torch.randn(800, 200, dtype=dtype)
    torch.manual_seed(4)
    fused = drop_weight(w, p)
    after = torch.rand(())                                            # the generator moved on by the same draw
    torch.manual_seed(4)
    want = through_a_mask(w, p)
    assert torch.equal(torch.rand(()), after)
    assert type(fused.grad_fn).__name__ == "_DropConnectBackward"
    assert torch.equal(fused, want) and torch.equal(fused.signbit(), want.signbit())
    assert torch.equal(*(torch.autograd.grad(y, w, g)[0] for y in (fused, want)))
    assert abs((fused == 0).double().mean().item() - p) < 0.01


def test_without_the_extension_the_same_numbers(monkeypatch):
    w = torch.randn(64, 16, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(2)
    fused = drop_weight(w, 0.3)
    monkeypatch.setattr(build, "loaded", lambda: None)
    torch.manual_seed(2)
    twin = drop_weight(w, 0.3)
    assert twin.grad_fn is not None and type(twin.grad_fn).__name__ == "MulBackward0"
    assert torch.equal(fused, twin)


def test_gradcheck_and_nothing_kept_for_the_backward():
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)

    def f(w):
        torch.manual_seed(1)
        return drop_weight(w, 0.4)
    assert torch.autograd.gradcheck(f, (w,))
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        f(w).sum().backward()
    assert kept == []                                                 # the backward remakes the mask from its key


def test_the_product_comes_from_the_buffer_pool():
    w = torch.randn(800, 200)                                         # 640 KB: pooled
    drop_weight(w, 0.5)                                               # its block goes back to the pool when freed
    served = build.loaded()._buffer_pool_stats()[2]
    drop_weight(w, 0.5)
    assert build.loaded()._buffer_pool_stats()[2] > served
