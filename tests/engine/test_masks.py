"""The regularisers' masks (rnnkit.engine.masks, csrc/masks.cpp): the compiled drawer and its PyTorch twin give
the same bits, the hash is the documented one (hand-computed values), the rate and independence are right, and
torch's seed fixes every mask."""
from __future__ import annotations

import math

import pytest
import torch

from rnnkit.engine import build, masks

pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def mix(x: int) -> int:
    """lowbias32 in plain Python integers: the documented hash, written a third time."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_mix_is_a_bijection_that_spreads_neighbours():
    outs = [mix(i) for i in range(1 << 16)]
    assert len(set(outs)) == len(outs)                                # no two inputs collide
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(outs, outs[1:])) / (len(outs) - 1)
    assert 15 < flipped < 17                                          # neighbours differ in ~half the 32 bits


@pytest.mark.parametrize("seed", [0, 1, -1, 2**62 + 12345, -(2**63), 987654321987])
@pytest.mark.parametrize("shape, threshold", [((7,), 1), ((35, 20, 20), 2**31), ((80, 200), 3 * 2**30),
                                              ((3, 5), 2**32 - 1)])
def test_compiled_and_torch_twin_give_the_same_bits_as_python_integers(seed, shape, threshold):
    compiled = build.extension().bernoulli_mask(seed, list(shape), threshold, 2.5, torch.float32)
    twin = masks._bernoulli_torch(shape, torch.tensor(seed), threshold, 2.5, torch.float32)
    as_bool = build.extension().bernoulli_mask(seed, list(shape), threshold, 1.0, torch.bool)
    torch.testing.assert_close(compiled, twin, rtol=0, atol=0)
    assert torch.equal(as_bool, twin != 0)
    k0, k1 = seed % 2**32, (seed % 2**64) >> 32
    for i in [0, 1, math.prod(shape) - 1]:
        want = 2.5 if mix(mix((i + k0) % 2**32) ^ k1) < threshold else 0.0
        assert compiled.flatten()[i].item() == want


def test_the_threads_split_gives_the_same_bits():
    torch.set_num_threads(2)
    n = 3 << 20                                                     # past the 2^20 grain: split over threads
    two = build.extension().bernoulli_mask(5, [n], 2**31, 1.0, torch.bool)
    torch.set_num_threads(1)
    one = build.extension().bernoulli_mask(5, [n], 2**31, 1.0, torch.bool)
    assert torch.equal(one, two)
    assert torch.equal(two[-1000:], masks._bernoulli_torch((n,), torch.tensor(5), 2**31, 1.0, torch.bool)[-1000:])


@pytest.mark.parametrize("p", [0.05, 0.3, 0.9])
def test_rate_and_independence(p):
    m = masks.bernoulli((400, 1000), p, torch.device("cpu"), torch.float64)
    rate = m.mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / m.numel())
    rows, cols = m.mean(1), m.mean(0)                                 # no row or column bias
    assert rows.std().item() < 2 * math.sqrt(p * (1 - p) / 1000)
    assert cols.std().item() < 2 * math.sqrt(p * (1 - p) / 400)
    flat = m.flatten()
    both = (flat[1:] * flat[:-1]).mean().item()                       # neighbours independent
    assert abs(both - p * p) < 4 * math.sqrt(p * p * (1 - p * p) / flat.numel())


def test_values_dtypes_and_the_edges():
    cpu = torch.device("cpu")
    m = masks.bernoulli((50, 40), 0.5, cpu, torch.float32, value=4.0)
    assert m.dtype == torch.float32 and set(m.unique().tolist()) == {0.0, 4.0}
    assert masks.bernoulli((3, 4), 0.0, cpu, torch.bool).sum() == 0
    full = masks.bernoulli((3, 4), 1.0, cpu, torch.float64, value=2.0)
    assert torch.equal(full, torch.full((3, 4), 2.0, dtype=torch.float64))
    assert masks.bernoulli((3, 4), 1.0, cpu, torch.bool).all()
    assert masks.bernoulli((0, 4), 0.5, cpu, torch.bool).shape == (0, 4)


def test_torch_seed_fixes_the_mask_and_the_extension_is_not_needed(monkeypatch):
    cpu = torch.device("cpu")
    torch.manual_seed(3)
    a = masks.bernoulli((20, 30), 0.4, cpu, torch.bool)
    b = masks.bernoulli((20, 30), 0.4, cpu, torch.bool)
    monkeypatch.setattr(build, "loaded", lambda: None)                # as where the extension isn't built
    torch.manual_seed(3)
    assert torch.equal(masks.bernoulli((20, 30), 0.4, cpu, torch.bool), a)
    assert torch.equal(masks.bernoulli((20, 30), 0.4, cpu, torch.bool), b)
    assert not torch.equal(a, b)                                      # each draw a fresh key


def test_the_key_torch_compile_draws_is_eagers(monkeypatch):
    """Where compile traces, draw_key takes the key from randint (random_ can't be traced): the same 64 bits of
    torch's generator, the same key."""
    cpu = torch.device("cpu")
    keys = []
    for compiling in (False, True):
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
        torch.manual_seed(11)
        keys.append([masks.draw_key(cpu).item() for _ in range(500)])
    assert keys[0] == keys[1]
    assert min(keys[0]) < -(1 << 62) and max(keys[0]) > 1 << 62                 # the whole int64 range


def test_loaded_imports_a_built_extension_without_compiling(monkeypatch):
    module = build.extension()
    monkeypatch.setitem(build.state, "module", None)                  # a fresh process: built, not yet imported
    monkeypatch.setattr(build, "_compile", lambda verbose: pytest.fail("loaded() must never compile"))
    again = build.loaded()
    assert again is not None and again.__file__ == module.__file__


def test_loaded_is_none_where_nothing_is_built(monkeypatch, tmp_path):
    monkeypatch.setitem(build.state, "module", None)
    monkeypatch.setattr(build, "_library", lambda: ("x", str(tmp_path), str(tmp_path / "x.so"), []))
    assert build.loaded() is None
    assert build.state["error"] is None                               # nothing failed: a later build may run
