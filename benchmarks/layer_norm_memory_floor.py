"""Why layer norm's memory target (a training step keeps <= 1.3x the plain cell's) and its time target (<= 1.35x)
can't both be met on the CPU: the floor under the time of a step that keeps that little.

A 2-layer LSTM (I = H) keeps per row and layer, plain: x, h, C and the four activated gates (7 H floats); layer norm
adds the normalised x_t U and h_{t-1} W (4 H each) and C^_t (H). Under 1.3x (9.1 H) there is room for neither
4 H block, so the backward would have to recompute both products from x and the saved states: two matmuls of
(T*N, H) x (H, 4H) per layer, each the size of the forward's input product (the recurrent one as one matmul over
the chunk, since every h_{t-1} is saved). Their time, added to today's layer-norm step, is a lower bound for a
layer-norm step within the memory target (the renormalising passes it would also need are not counted).

Each shape: the plain and layer-norm compiled steps alternately (2 threads, medians of 25 after 2 warm-ups,
``common.medians``), and the two products per layer with the engine's own once-per-window matmul (``_gemm``,
oneDNN for float32):

    python benchmarks/layer_norm_memory_floor.py
"""
from __future__ import annotations

import torch
from common import medians

import rnnkit
from rnnkit.bench.timing import SHAPES
from rnnkit.engine import build


def main() -> None:
    torch.set_num_threads(2)
    gemm = build.extension()._gemm
    print("| (T, N, H) | plain step ms | layer norm step ms | × plain | 2 products × 2 layers ms | floor × plain |")
    print("|---|---|---|---|---|---|")
    for T, N, H in SHAPES:
        torch.manual_seed(0)
        x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
        plain = rnnkit.LSTM(H, H, 2, engine="compiled").train()
        normed = rnnkit.LSTM(H, H, 2, engine="compiled", layer_norm=True).train()
        ms = medians({"plain": lambda: plain(x)[0].backward(grad),      # alternately: the same machine state
                      "ln": lambda: normed(x)[0].backward(grad)}, rounds=25)
        base, ln = ms["plain"], ms["ln"]
        a, w, out = torch.randn(T * N, H), torch.randn(4 * H, H), torch.empty(T * N, 4 * H)
        products = 2 * 2 * medians({"gemm": lambda: gemm(out, a, w.t(), False)}, rounds=25)["gemm"]
        print(f"| ({T}, {N}, {H}) | {base:.1f} | {ln:.1f} | {ln / base:.2f}× | {products:.1f} | "
              f"{(ln + products) / base:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
