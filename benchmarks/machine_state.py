"""Is a slow step rnnkit's or the machine's? A 2-layer LSTM's compiled training step at (200, 4, 128), timed in
blocks of 10, each block followed by 200 products of two 256x256 matrices (torch, 2 threads) timed alike: when the
machine slows (a noisy neighbour, the host), both slow at the same moments. BENCHMARKS.md's "fast" and "slow" states
of the plain step at that shape are this. Run it a few times (each process may start in either state):

    python benchmarks/machine_state.py            # 40 blocks, about 10 s
"""
import sys
import time

import torch

from rnnkit.layers.recurrent import LSTM


def timed_block(step, repeats: int) -> float:
    """Seconds per call of ``step`` over ``repeats`` calls in a row."""
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main(blocks: int = 40) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    T, N, H = 200, 4, 128
    layer = LSTM(H, H, 2, engine="compiled").train()
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    timed_block(lambda: layer(x)[0].backward(grad), 5)                 # the build and first calls
    print("block | LSTM step ms | 256x256 matmul µs")
    for k in range(blocks):
        step = timed_block(lambda: layer(x)[0].backward(grad), 10) * 1e3
        product = timed_block(lambda: a @ b, 200) * 1e6
        print(f"{k:5d} | {step:12.1f} | {product:17.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
