"""What drawing one regulariser mask costs: ``rnnkit.layers.regularisers.bernoulli`` (16-bit lanes, four per 64-bit
draw) against ``torch.rand(...) < p`` and ``bernoulli_``, for a (35, 20, 200) zoneout mask and an 800 x 200
weight-drop mask; one thread, medians of 30 calls after 3 warm-ups:

    python benchmarks/mask_draw.py
"""
import time

import torch

from rnnkit.layers.regularisers import bernoulli

SHAPES = {"zoneout (35, 20, 200)": (35, 20, 200), "weight drop (800, 200)": (800, 200)}


def median_ms(f, n: int = 30) -> float:
    for _ in range(3):
        f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1e3


def main() -> None:
    torch.set_num_threads(1)
    like = torch.zeros(1)
    for name, shape in SHAPES.items():
        lanes = median_ms(lambda: bernoulli(shape, 0.3, like, torch.bool))
        rand = median_ms(lambda: torch.rand(shape) < 0.3)
        old = median_ms(lambda: torch.empty(shape, dtype=torch.bool).bernoulli_(0.3))
        print(f"{name}: 16-bit lanes {lanes:.3f} ms, rand < p {rand:.3f} ms, bernoulli_ {old:.3f} ms "
              f"(rand / lanes {rand / lanes:.1f}x)")


if __name__ == "__main__":
    main()
