"""The compiled loop's buffer pool (csrc/buffer_pool.h): the next training step of the same size takes every large
buffer from the blocks the last one freed, and the results don't depend on the pool (off, the bits are equal)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from rnnkit.cells.spec import recurrence
from rnnkit.engine import build, fused

pytestmark = pytest.mark.usefixtures("extension")          # tests/engine/conftest.py


def training_step(T=30, N=24, H=96, seed=0) -> list[torch.Tensor]:
    """One LSTM layer's forward and backward through the compiled loop (buffers of 64 KiB and more)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*s: int) -> torch.Tensor:
        return (0.3 * torch.randn(*s, generator=g)).requires_grad_()

    x, h0, c0 = rand(T, N, H), rand(N, H), rand(N, H)
    weights = (rand(4 * H, H), rand(4 * H, H), rand(4 * H), rand(4 * H))
    h_seq, h_T, c_T = fused.run_fused(recurrence("lstm"), x, h0, c0, weights, None)
    loss = (h_seq * torch.linspace(-1, 1, h_seq.numel()).view_as(h_seq)).sum() + h_T.sum() + c_T.sum()
    return [h_seq.detach()] + list(torch.autograd.grad(loss, [x, h0, c0, *weights]))


def stats() -> tuple[int, int, int, int]:
    return build.extension()._buffer_pool_stats()


def test_the_next_step_takes_its_buffers_from_the_pool():
    training_step()                                   # warm: blocks of these sizes are in the pool now
    _, _, hits, misses = stats()
    first = training_step()
    _, held, hits_after, misses_after = stats()
    assert misses_after == misses                     # nothing allocated afresh
    assert hits_after - hits >= 6                     # states, gates, dG, dx, dU, dW at least
    assert 0 < held <= 256 << 20
    assert all(torch.equal(a, b) for a, b in zip(first, training_step()))


def test_the_pool_off_gives_the_same_bits(tmp_path):
    """RNNKIT_BUFFER_POOL_MB=0 (read once per process) turns the pool off: the same step gives equal tensors."""
    here = tmp_path / "pooled.pt"
    torch.save(training_step(), here)
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); from test_buffer_pool import training_step, stats;"
            "from rnnkit.engine import fused; fused.build(); out = training_step(); s = stats();"
            "assert s[0] == 0 and s[2] == 0, s; ref = torch.load(sys.argv[2]);"
            "assert all(torch.equal(a, b) for a, b in zip(out, ref)); print('same')")
    env = dict(os.environ, RNNKIT_BUFFER_POOL_MB="0")
    done = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), str(here)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr[-2000:]
