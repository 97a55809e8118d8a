"""What one fork and join of the engine's threads costs here: ``at::parallel_for`` over 2 tasks (as layer norm's
backward forks once a step at few sequences, for its side work) against the same work on one thread, in
microseconds, medians of 5 runs of 20,000 forks. Builds a tiny C++ extension on first use (about 30 s):

    python benchmarks/fork_cost.py
"""
import torch
from torch.utils.cpp_extension import load_inline

SOURCE = r"""
#include <ATen/Parallel.h>
#include <chrono>

// Microseconds per call of `body` over `reps` calls; `forked`: inside a 2-task parallel_for, each task doing it.
double time_us(int64_t reps, int64_t work, bool forked) {
  volatile double sink = 0;
  auto body = [&]() { double s = 0; for (int64_t i = 0; i < work; ++i) s += i * 1e-9; sink = sink + s; };
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r) {
    if (forked) at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { body(); });
    else body();
  }
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::micro>(t1 - t0).count() / reps;
}
"""


def main() -> None:
    ext = load_inline("rnnkit_fork_cost", cpp_sources=SOURCE, functions=["time_us"],
                      extra_cflags=["-O2", "-fopenmp"], extra_ldflags=["-fopenmp"])
    torch.set_num_threads(2)
    for work in (0, 1000, 5000):
        ext.time_us(2000, work, True)                                   # warm-up: the thread pool starts
        forked = sorted(ext.time_us(20000, work, True) for _ in range(5))[2]
        alone = sorted(ext.time_us(20000, work, False) for _ in range(5))[2]
        print(f"work {work:>5}: fork + join {forked:.2f} us, the same work on one thread {alone:.2f} us, "
              f"the fork's own cost {forked - alone:.2f} us")


if __name__ == "__main__":
    main()
