"""Peak memory of one training step against what BPTT must keep, measured in a fresh process set up for it.

Peak memory is the growth of the process's peak resident set during one training step (glibc told to return
freed blocks to the OS at once, and the compiled engine's buffer pool off, so the resident set tracks live
memory), against the minimum full BPTT must keep:
``saved_per_step·N·H·T`` floats (the LSTM's 4 gates, c and h; the GRUs' 3 gates and h, plus h W_n for PyTorch's
form; the RNN's h). Run as ``python -m rnnkit.bench.memory --memory SHAPES [--long]`` by :func:`memory_in_subprocess`.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from ..cells.spec import LSTM, Recurrence
from ..engine import run_direction
from .timing import CELLS, torch_module


def _rss(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def peak_growth(f: Callable[[], object], warm: Callable[[], object]) -> int | None:
    """Bytes the peak resident set grows by while f runs (after warm() has run once); None where unsupported."""
    try:
        warm()
        Path("/proc/self/clear_refs").write_text("5")          # resets VmHWM to the current resident set
        base = _rss("VmRSS")
        f()
        return _rss("VmHWM") - base
    except OSError:
        return None


def release_freed_memory() -> None:
    """Make glibc hand blocks over 64 KiB back to the OS on free, so the resident set tracks live memory.

    Must run before the process allocates much (freed heap blocks from earlier would be reused unseen), and only
    in a process that times nothing: every big allocation becomes an mmap and its page faults.
    """
    libc = ctypes.CDLL(None)
    if hasattr(libc, "mallopt"):
        libc.mallopt(-3, 1 << 16)                               # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 16)                               # M_TRIM_THRESHOLD


def megabytes(n: int) -> str:
    """``12 MB``, with a decimal below 10 MB so that small rows don't read 0."""
    mb = n / 2**20
    return f"{mb:.1f} MB" if abs(mb) < 10 else f"{mb:.0f} MB"


def memory_rows(shapes: list[tuple[int, int, int]], cells: dict[str, tuple[Recurrence, Recurrence]] = CELLS
                ) -> list[str]:
    """Peak memory growth of one training step per cell and shape, against what BPTT must keep."""
    rows = []
    for label, (cell, peer) in cells.items():
        for T, N, H in shapes:
            k = max(1, round(T ** 0.5))
            x = torch.randn(T, N, H, requires_grad=True)
            grad = torch.randn(T, N, H)
            module = torch_module(peer, H)
            w = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
            h0 = torch.zeros(N, H)
            variants = {
                "torch.nn": lambda xx: module(xx)[0],
                "fused": lambda xx: run_direction(cell, xx, h0, h0, w, engine="compiled")[0],
                "fused, checkpoint_every=√T": lambda xx: run_direction(cell, xx, h0, h0, w, engine="compiled",
                                                                       checkpoint_every=k)[0],
                "python": lambda xx: run_direction(cell, xx, h0, h0, w, engine="python")[0],
            }
            minimum = cell.saved_per_step * N * H * T * 4
            cols = []
            for fwd in variants.values():
                g = peak_growth(lambda: fwd(x).backward(grad), lambda: fwd(x[:2]).backward(grad[:2]))
                g = None if g is None else max(g, 0)          # the resident set can shrink by a page or two
                cols.append("n/a" if g is None else f"{megabytes(g)} ({g / minimum:.2f}×)")
            rows.append(f"| {label} | {T}, {N}, {H} | {megabytes(minimum)} | " + " | ".join(cols) + " |")
    header = ["| cell | (T, N, H) | BPTT's minimum | torch.nn | fused | fused, checkpoint_every=√T | python |",
              "|---" * 7 + "|"]
    return header + rows


def long_sequence_row(T: int = 10_000, N: int = 32, H: int = 512, every: int = 100) -> str:
    """Full BPTT over a long sequence with checkpointing: the 2 GB budget."""
    x = torch.randn(T, N, H, requires_grad=True)
    grad = torch.randn(T, N, H)
    module = torch_module(LSTM, H)
    w = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    h0 = torch.zeros(N, H)

    def f(k: int) -> None:                      # x itself, not a slice: a slice's backward makes a full-size grad
        xk, gk = (x, grad) if k == T else (x[:k], grad[:k])
        run_direction(LSTM, xk, h0, h0, w, engine="compiled", checkpoint_every=every)[0].backward(gk)

    start = time.perf_counter()
    g = peak_growth(lambda: f(T), lambda: f(2 * every))
    took = time.perf_counter() - start
    what = "n/a" if g is None else f"{g / 2**30:.2f} GB"
    return (f"Full BPTT, LSTM T={T:,}, N={N}, H={H}, x requiring grad, fused with checkpoint_every={every}: "
            f"peak growth {what} ({took:.0f} s; the input x alone is {x.numel() * 4 / 2**30:.2f} GB).")


def memory_in_subprocess(shapes: list[tuple[int, int, int]], long: bool = False) -> list[str]:
    """The memory rows (and the long-sequence line) measured in a fresh process set up for it."""
    args = [sys.executable, "-m", "rnnkit.bench.memory", "--memory", json.dumps(shapes)] + \
        (["--long"] if long else [])
    env = dict(os.environ, RNNKIT_BUFFER_POOL_MB="0")   # the engine's buffer pool would keep the blocks resident
    done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return done.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    """The memory rows, measured in this process (started fresh by :func:`memory_in_subprocess`)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memory", required=True)              # JSON list of shapes
    p.add_argument("--long", action="store_true")
    args = p.parse_args(argv)
    release_freed_memory()
    torch.set_num_threads(2)
    shapes = [tuple(s) for s in json.loads(args.memory)]
    print("\n".join((memory_rows(shapes) if shapes else []) + ([long_sequence_row()] if args.long else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
