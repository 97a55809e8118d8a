"""What the layers' regularisers cost (``rnnkit bench --regularised``): a 2-layer LSTM's training step per option set.

Each configuration is one training step (forward + backward, dense upstream gradient) of the same 2-layer LSTM
(two layers, so that variational dropout has a layer to act on) at the engine benchmark's shapes, in one process
with 2 threads: warmed up, then timed in interleaved rounds (more where the shape is cheap), medians, each a ratio
to the plain compiled cell of the same run. "Saved" is what the step keeps for its backward (the tensors autograd
holds, counted with ``torch.autograd.graph.saved_tensors_hooks``; the masks included), as a ratio to the plain
cell's.

The ``autograd loop`` rows are the same options written as a plain autograd loop over the cell equations
(``engine="autograd"``), the way users write them today. The ``checkpoint_every`` row is layer norm's memory
trade: the backward reruns each window's forward instead of keeping the normalised values.

``--device cuda`` times the same option sets on the first GPU (:data:`CUDA_CONFIGS`, each step ended by a
synchronize) beside cuDNN's plain ``torch.nn.LSTM``, the ratios' base there: cuDNN can't change its cell, so the
options run in the CUDA-graph loop (``engine="auto"`` on a GPU) and, for scale, the Python loop and the autograd loop.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from ..layers.recurrent import LSTM
from .cpu import machine
from .timing import QUICK_SHAPES, SHAPES, timed

RD_WD_ZO = dict(recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1)
CONFIGS: dict[str, dict] = {
    "plain (compiled)": dict(engine="compiled"),
    "weight_drop + variational (compiled)": dict(engine="compiled", weight_drop=0.5, variational_dropout=0.3),
    "rd + wd + zoneout (compiled)": dict(engine="compiled", **RD_WD_ZO),
    "rd + wd + zoneout (python BPTT)": dict(engine="python", **RD_WD_ZO),
    "rd + wd + zoneout (autograd loop)": dict(engine="autograd", **RD_WD_ZO),
    "layer_norm (compiled)": dict(engine="compiled", layer_norm=True),
    "layer_norm (autograd loop)": dict(engine="autograd", layer_norm=True),
    "rd + wd + zoneout + layer_norm (compiled)": dict(engine="compiled", layer_norm=True, **RD_WD_ZO),
    "layer_norm, checkpoint_every=10 (compiled)": dict(engine="compiled", layer_norm=True, checkpoint_every=10),
}
BASE = "plain (compiled)"
CUDA_CONFIGS: dict[str, dict] = {
    "torch.nn.LSTM (cuDNN)": dict(torch_nn=True),
    "plain (cuda-graph)": dict(engine="cuda-graph"),
    "weight_drop + variational (cuda-graph)": dict(engine="cuda-graph", weight_drop=0.5, variational_dropout=0.3),
    "rd + wd + zoneout (cuda-graph)": dict(engine="cuda-graph", **RD_WD_ZO),
    "rd + wd + zoneout (python BPTT)": dict(engine="python", **RD_WD_ZO),
    "rd + wd + zoneout (autograd loop)": dict(engine="autograd", **RD_WD_ZO),
    "layer_norm (cuda-graph)": dict(engine="cuda-graph", layer_norm=True),
    "layer_norm (python BPTT)": dict(engine="python", layer_norm=True),
    "layer_norm (autograd loop)": dict(engine="autograd", layer_norm=True),
    "rd + wd + zoneout + layer_norm (cuda-graph)": dict(engine="cuda-graph", layer_norm=True, **RD_WD_ZO),
}
CUDA_BASE = "torch.nn.LSTM (cuDNN)"
MAX_ROUNDS = 45
BUDGET_S = 30.0          # per shape, for the rounds beyond the minimum


def saved_bytes(step) -> int:
    """Bytes of the tensors one training step saves for its backward (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def configured_layers(H: int, configs: dict[str, dict] = CONFIGS, device: str = "cpu") -> dict[str, nn.Module]:
    """name -> the 2-layer LSTM of hidden size H (input H) that each of ``configs`` times, in training mode
    (``torch_nn=True``: torch.nn's own module)."""
    layers = {}
    for name, kw in configs.items():
        kw = dict(kw)
        every = kw.pop("checkpoint_every", None)
        if kw.pop("torch_nn", False):
            layers[name] = nn.LSTM(H, H, 2, device=device, **kw).train()
            continue
        layers[name] = LSTM(H, H, 2, device=device, **kw).train()
        layers[name].checkpoint_every = every          # the layer's attribute: states kept every k steps
    return layers


def training_step(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor):
    """One training step of ``layer`` as every configuration times it: forward on ``x``, backward of ``grad``;
    on a GPU it waits for the GPU's work to end."""
    if x.is_cuda:
        return lambda: (layer(x)[0].backward(grad), torch.cuda.synchronize())
    return lambda: layer(x)[0].backward(grad)


def measure(T: int, N: int, H: int, rounds: int, budget_s: float = 0.0, configs: dict[str, dict] = CONFIGS,
            device: str = "cpu") -> dict[str, tuple[float, int, int]]:
    """name -> (median seconds of a training step, bytes saved for its backward, rounds timed). At least
    ``rounds`` interleaved rounds, more (at most :data:`MAX_ROUNDS`) where they fit ``budget_s``: the shared
    machine's noise moves single steps by 5-10%, and the small shapes cost little to time more often."""
    torch.manual_seed(0)
    x, grad = torch.randn(T, N, H, device=device), torch.randn(T, N, H, device=device)
    layers = configured_layers(H, configs, device)
    steps = {name: training_step(layer, x, grad) for name, layer in layers.items()}

    start = time.perf_counter()
    saved = {name: saved_bytes(step) for name, step in steps.items()}      # also the warm-up
    rounds = max(rounds, min(MAX_ROUNDS, int(budget_s / (time.perf_counter() - start))))
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(timed(step))
    return {name: (statistics.median(ts), saved[name], rounds) for name, ts in times.items()}


def run(quick: bool, command: str = "rnnkit bench --regularised", device: str = "cpu") -> str:
    """The report as markdown: one table per shape."""
    shapes = QUICK_SHAPES if quick else SHAPES
    rounds = 5 if quick else 9
    if device == "cpu":
        torch.set_num_threads(2)
        configs, base, where, peer = CONFIGS, BASE, f"Machine: {machine()}", "the plain compiled cell"
    else:
        from .cuda import gpu_description
        configs, base, where, peer = CUDA_CONFIGS, CUDA_BASE, f"GPU: {gpu_description()}", "cuDNN's plain LSTM"
    lines = ["# rnnkit regularised cells: the cost of each option set", "", where, "",
             f"Command: `{command}{' --quick' if quick else ''}`; 2-layer LSTM, training step, medians of "
             f"{rounds}-{MAX_ROUNDS} interleaved rounds (as many as fit {BUDGET_S:.0f} s a shape); ratios to "
             f"{peer} in the same run", ""]
    for T, N, H in shapes:
        results = measure(T, N, H, rounds, 0.0 if quick else BUDGET_S, configs, device)
        base_t, base_m, timed_rounds = results[base]
        lines += [f"## (T, N, H) = ({T}, {N}, {H}), {timed_rounds} rounds", "",
                  "| configuration | ms | × plain | saved MB | × plain |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {t * 1e3:.1f} | {t / base_t:.2f}× | {m / 2**20:.1f} | {m / base_m:.2f}× |"
                  for name, (t, m, _) in results.items()]
        lines.append("")
        print(f"({T}, {N}, {H}) done", file=sys.stderr, flush=True)
    return "\n".join(lines)
