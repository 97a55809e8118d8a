"""The contenders of the engine benchmark and how they are timed: one warm-up each, then interleaved rounds.

Each cell runs as torch.nn's module, rnnkit's device fast loop (the ``fused`` column: ``engine="compiled"`` on
the CPU, ``engine="cuda-graph"`` on a GPU), rnnkit's Python BPTT loop (``engine="python"``) and an ``nn.*Cell``
loop. The lecture's GRU (reset before the matmul) has no torch.nn twin: its peers are nn.GRU and nn.GRUCell.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from ..cells.spec import GRU, GRU_TORCH, LSTM, RNN_TANH, Recurrence
from ..engine import run_direction

SHAPES = [(35, 20, 200), (100, 32, 256), (100, 64, 512), (50, 128, 1024), (200, 4, 128)]
QUICK_SHAPES = [(35, 20, 200), (200, 4, 128)]
CELLS: dict[str, tuple[Recurrence, Recurrence]] = {  # label: (rnnkit's cell, the cell whose torch.nn layers race it)
    "LSTM": (LSTM, LSTM),
    "GRU (PyTorch form)": (GRU_TORCH, GRU_TORCH),
    "GRU (Cho, lecture)": (GRU, GRU_TORCH),
    "RNN tanh": (RNN_TANH, RNN_TANH),
}
IMPLS = ("torch.nn", "fused", "python", "cell loop")
TORCH_CELLS: dict[type[nn.Module], type[nn.Module]] = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}

Run = Callable[[bool], None]


def torch_module(peer: Recurrence, H: int, device: str = "cpu") -> nn.Module:
    """``peer``'s torch.nn layer, one layer of ``H`` units on inputs of ``H`` features."""
    return peer.torch_class(H, H, device=device, **peer.torch_kwargs)


def torch_cell(peer: Recurrence, H: int, device: str = "cpu") -> nn.Module:
    """``peer``'s ``nn.*Cell``, the one-step twin of :func:`torch_module`."""
    return TORCH_CELLS[peer.torch_class](H, H, device=device, **peer.torch_kwargs)


def fast_engine(device: str) -> str:
    """The engine of the ``fused`` column: the compiled loop on the CPU, CUDA-graph replay on a GPU."""
    return "cuda-graph" if torch.device(device).type == "cuda" else "compiled"


def implementations(cell: Recurrence, peer: Recurrence, T: int, N: int, H: int,
                    device: str = "cpu") -> dict[str, Run]:
    """name -> run(train): one forward (and, training, one backward) of each implementation, same data.

    On CUDA each run ends with a synchronize, so wall-clock timing sees the GPU's work."""
    torch.manual_seed(0)
    x = torch.randn(T, N, H, device=device)
    grad = torch.randn(T, N, H, device=device)
    module, step_cell = torch_module(peer, H, device), torch_cell(peer, H, device)
    weights = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    h0 = torch.zeros(N, H, device=device)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    leaves = [x, *module.parameters(), *step_cell.parameters()]
    fast = fast_engine(device)

    def step(forward: Callable[[], torch.Tensor]) -> Run:
        def run(train: bool) -> None:
            x.requires_grad_(train)
            for p in leaves:
                p.grad = None
            with torch.set_grad_enabled(train):
                y = forward()
                if train:
                    y.backward(grad)
            sync()
        return run

    def cell_loop() -> torch.Tensor:
        h = (h0, h0) if peer.has_cell_state else h0
        outs = []
        for x_t in x.unbind(0):
            h = step_cell(x_t, h)
            outs.append(h[0] if peer.has_cell_state else h)
        return torch.stack(outs)

    return {
        "torch.nn": step(lambda: module(x)[0]),
        "fused": step(lambda: run_direction(cell, x, h0, h0, weights, engine=fast)[0]),
        "python": step(lambda: run_direction(cell, x, h0, h0, weights, engine="python")[0]),
        "cell loop": step(cell_loop),
    }


def timed(f: Callable[[], object]) -> float:
    """Seconds one call of ``f`` takes."""
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def compare(runs: dict[str, Run], train: bool, budget_s: float, names: tuple[str, ...] = IMPLS
            ) -> dict[str, list[float]]:
    """Seconds per run of each implementation: one warm-up each, then interleaved rounds within the budget."""
    warm = {k: timed(lambda: runs[k](train)) for k in names}
    rounds = max(3, min(20, int(budget_s / max(sum(warm.values()), 1e-9))))
    times: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(rounds):
        for k in names:
            times[k].append(timed(lambda: runs[k](train)))
    return times


def ratio(t: float, ref: float) -> str:
    """``12.3 ms (1.05×)``: ``t`` and its ratio to ``ref``."""
    return f"{t * 1e3:.1f} ms ({t / ref:.2f}×)"
