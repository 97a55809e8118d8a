"""One matmul over a (35, 20, 200) layer's 700 rows against the same as two (240 + 460 rows), with the engine's
``_gemm`` (oneDNN for float32), 2 threads, medians of 200 interleaved rounds (``common.medians``): the forward's
``x_t U`` and the backward's folds into dU and dx. Why layer norm's kept steps split only the forward's matmul, not
the backward's chunks (BENCHMARKS.md, "Memory for time"):

    python benchmarks/matmul_split.py
"""
import torch
from common import medians

from rnnkit.engine.build import extension


def main() -> None:
    torch.set_num_threads(2)
    gemm = extension()._gemm
    x, U, d = torch.randn(700, 200), torch.randn(800, 200), torch.randn(700, 800)
    out, dU, dx = torch.empty(700, 800), torch.zeros(800, 200), torch.empty(700, 200)
    products = {"x_t U": lambda a, b: gemm(out[a:b], x[a:b], U.t(), False),
                "dU += dX^T x": lambda a, b: gemm(dU, d[a:b].t(), x[a:b], True),
                "dx = dX U": lambda a, b: gemm(dx[a:b], d[a:b], U, False)}
    for name, f in products.items():
        ms = medians({"one": lambda: f(0, 700), "two": lambda: (f(0, 240), f(240, 700))}, 200)
        one, two = ms["one"], ms["two"]
        print(f"{name}: 700 rows {one:.2f} ms, 240 + 460 rows {two:.2f} ms ({two / one:.3f}×)")


if __name__ == "__main__":
    main()
