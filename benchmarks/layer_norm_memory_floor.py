"""The floor under the time of a layer-norm training step that keeps <= 1.3x the plain cell's memory (layer norm's
memory target), to set beside its time target (<= 1.35x).

A 2-layer LSTM (I = H) keeps per row: the first layer's input x, and per layer h, C and the four activated gates:
13 H floats for the stack, so 1.3x is 16.9 H. Layer norm's backward needs per layer the normalised x_t U and
h_{t-1} W (4 H each), C^_t (H) and 1/sigma. Even without the gates (they can be recomputed from the normalised
blocks), keeping both 4 H blocks takes x + 2 x (h, C, 4 H, 4 H, C^) = 23 H. Keeping one of them fits: 15 H. So the
backward has to recompute at least one product per layer, x_t U or h_{t-1} W: a (T*N, H) x (H, 4H) matmul, the
size of the forward's input product (the recurrent one can be one matmul over the chunk, since every h_{t-1} is
saved). Its time, added to the layer-norm step that kept both blocks (commit 90a0f4e and before), is a lower bound
for a layer-norm step within the memory target. The renormalising pass and the gates' recomputation it also needs
are not counted. The engine has kept only LN(h W) since (csrc/fused.h, rebuild_gates); run at a later commit, the
"layer norm step" column is that layout's whole step, product included, and the floor column double-counts it.

Each shape: the plain and layer-norm compiled steps alternately (2 threads, medians of 25 after 2 warm-ups,
``common.medians``), and one product per layer with the engine's own once-per-window matmul (``_gemm``, oneDNN
for float32):

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
    print("| (T, N, H) | plain step ms | layer norm step ms | × plain | 1 product × 2 layers ms | floor × plain |")
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
        products = 2 * medians({"gemm": lambda: gemm(out, a, w.t(), False)}, rounds=25)["gemm"]
        print(f"| ({T}, {N}, {H}) | {base:.1f} | {ln:.1f} | {ln / base:.2f}× | {products:.1f} | "
              f"{(ln + products) / base:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
