"""Issue 17: is a minimal RNN trained with a scan faster than the sequential LSTM, here, on a CPU?

    python benchmarks/parallel_scan.py             # the three shapes and T = 64..4096 at (N, H) = (16, 256)
    python benchmarks/parallel_scan.py --quick     # (1024, 16, 256) and T = 64, 256, 4096: about a minute
    python benchmarks/parallel_scan.py --shapes 512x16x256 --sweep ""   # any shapes, no sweep
    python benchmarks/parallel_scan.py --shapes "" --sweep 64,4096       # a sweep alone
    python benchmarks/parallel_scan.py --threads 1 --clock cpu           # CPU time on one thread: what a step
                                                                          # costs while other jobs share the CPU

On a busy machine run the parts one by one (each appends its own report, with its load, to the log); each
measured row is also written to stderr as soon as it is done.

One training step = forward and backward of one layer (input size = H) on a random (T, N, H) input that needs
its gradient, with a fixed upstream gradient on the outputs (``out.backward(g)``: no loss pass), parameter
gradients dropped between steps. Contenders, in one process and in turn (round robin, so a busy machine slows all
of them alike), after a warm-up at a short T: minGRU's input-projection products alone (``F.linear`` forward and
its backward, dX and dW: the floor any minGRU pays), MinGRU and MinLSTM with the compiled C++ scan, with the
chunked scan in torch operators and with the log-space scan (Heinsen; ``logcumsumexp`` under autograd; left out
at H >= 1024 unless ``--all``), ``rnnkit.LSTM`` (``engine="auto"``: the compiled time loop) and ``torch.nn.LSTM``.
Medians of the timed rounds, and in brackets the ratios of the fastest runs.
The log is appended to ``benchmarks/results/parallel-scan-<date>.log``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import RESULTS, commit, cpu_name, save_report

import rnnkit

SHAPES = ((1024, 16, 256), (1024, 16, 1024), (1024, 64, 256))
SWEEP = (64, 128, 256, 512, 1024, 2048, 4096)
QUICK_SHAPES, QUICK_SWEEP = ((1024, 16, 256),), (64, 256, 4096)
COLUMNS = ("proj", "minGRU C++", "minGRU torch", "minGRU log", "minLSTM C++", "minLSTM torch", "rnnkit.LSTM",
           "nn.LSTM")


def contenders(T: int, N: int, H: int, skip: set[str]) -> dict:
    """name -> a function that runs one training step at (T, N, H) and drops the gradients."""
    torch.manual_seed(0)
    x = torch.randn(T, N, H, requires_grad=True)
    g = torch.randn(T, N, H)
    w = (torch.randn(2 * H, H) / H ** 0.5).requires_grad_()
    g2 = torch.randn(T, N, 2 * H)

    def projection():
        y = F.linear(x, w)                       # x U for the two gate blocks of every step
        y.backward(g2)                           # dX = dG U^T, dU = X^T dG
        x.grad = w.grad = None

    def step_of(module):
        def step():
            out = module(x)[0]
            out.backward(g)
            x.grad = None
            for p in module.parameters():
                p.grad = None
        return step

    layers = {
        "minGRU C++": lambda: rnnkit.MinGRU(H, H, scan="compiled"),
        "minGRU torch": lambda: rnnkit.MinGRU(H, H, scan="torch"),
        "minGRU log": lambda: rnnkit.MinGRU(H, H, log_space=True, scan="log"),
        "minLSTM C++": lambda: rnnkit.MinLSTM(H, H, scan="compiled"),
        "minLSTM torch": lambda: rnnkit.MinLSTM(H, H, scan="torch"),
        "rnnkit.LSTM": lambda: rnnkit.LSTM(H, H),
        "nn.LSTM": lambda: torch.nn.LSTM(H, H),
    }
    runs = {"proj": projection}
    runs.update({name: step_of(make()) for name, make in layers.items() if name not in skip})
    return runs


def measure(T: int, N: int, H: int, seconds: float, skip: set[str], clock=time.perf_counter) -> dict[str, list[float]]:
    """Seconds per training step of each contender at (T, N, H), every timed round, by ``clock``."""
    warm = contenders(min(T, 128), N, H, skip)
    for run in warm.values():                    # kernels, packed weights, the extension: loaded and warm
        run()
    runs = contenders(T, N, H, skip)
    times: dict[str, list[float]] = {name: [] for name in runs}
    started, rounds = time.perf_counter(), 0
    while rounds < 3 or (rounds < 15 and time.perf_counter() - started < seconds):
        for name, run in runs.items():
            t0 = clock()
            run()
            times[name].append(clock() - t0)
        rounds += 1
    return times


def ms(v: float | None) -> str:
    return "—" if v is None else (f"{v * 1e3:.0f}" if v >= 0.1 else f"{v * 1e3:.1f}")


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{a / b:.2f}×"


RATIOS = (("minGRU C++ / proj", "minGRU C++", "proj"), ("LSTM / minGRU C++", "rnnkit.LSTM", "minGRU C++"),
          ("nn.LSTM / minGRU C++", "nn.LSTM", "minGRU C++"), ("LSTM / minLSTM C++", "rnnkit.LSTM", "minLSTM C++"),
          ("LSTM / minGRU torch", "rnnkit.LSTM", "minGRU torch"), ("LSTM / minGRU log", "rnnkit.LSTM", "minGRU log"),
          ("minGRU torch / C++", "minGRU torch", "minGRU C++"))


def table(rows: list[tuple[tuple[int, int, int], dict[str, list[float]]]]) -> list[str]:
    """Medians in ms and their ratios; then, in brackets, the ratios of the fastest runs (less of the noise a
    shared machine adds)."""
    head = ["(T, N, H)", "rounds", *[f"{c} ms" for c in COLUMNS], *[r[0] for r in RATIOS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (T, N, H), times in rows:
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        cells = [f"({T}, {N}, {H})", str(min(len(v) for v in times.values())), *[ms(med.get(c)) for c in COLUMNS],
                 *[f"{ratio(med.get(a), med.get(b))} [{ratio(best.get(a), best.get(b))}]" for _, a, b in RATIOS]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def parse_shape(s: str) -> tuple[int, int, int]:
    T, N, H = (int(v) for v in s.lower().split("x"))
    return T, N, H


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one shape and a three-point sweep (about a minute)")
    p.add_argument("--shapes", default=None,
                   help="TxNxH,... (default: 1024x16x256,1024x16x1024,1024x64x256; '' for none)")
    p.add_argument("--sweep", default=None, help="T values at (N, H) = (16, 256), comma-separated ('' for none)")
    p.add_argument("--seconds", type=float, default=8.0, help="time per shape after 3 rounds (at most 15 rounds)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: this process's CPU time (time.process_time) instead of wall-clock time; with "
                        "--threads 1 it is what a step costs, whatever else the machine runs (a busy shared "
                        "machine time-slices wall-clock time; with 2+ threads waiting threads would count)")
    p.add_argument("--all", action="store_true", help="also the log-space scan at H >= 1024 (minutes more)")
    p.add_argument("--skip", default="", help="contenders to leave out, comma-separated (e.g. 'minGRU log')")
    p.add_argument("--log", default=None, help="log file (default benchmarks/results/parallel-scan-<date>.log)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    shapes = [parse_shape(s) for s in args.shapes.split(",") if s] if args.shapes is not None else \
        list(QUICK_SHAPES if args.quick else SHAPES)
    sweep = [int(v) for v in args.sweep.split(",") if v] if args.sweep is not None else \
        list(QUICK_SWEEP if args.quick else SWEEP)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    log = Path(args.log) if args.log else RESULTS / f"parallel-scan-{datetime.date.today().isoformat()}.log"
    rnnkit.MinGRU(4, 4, scan="compiled")(torch.zeros(2, 1, 4))   # build/load the extension before timing

    load0 = os.getloadavg()
    started = time.perf_counter()
    results = {}
    for T, N, H in shapes + [(T, 16, 256) for T in sweep]:
        if (T, N, H) not in results:
            big = skip | ({"minGRU log"} if H >= 1024 and not args.all else set())
            results[(T, N, H)] = measure(T, N, H, args.seconds, big, clock)
            print(f"  after {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}: "
                  f"{table([((T, N, H), results[(T, N, H)])])[-1]}", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    lines = [(f"=== parallel scan: training step of one layer (I = H), ms (median); ratios of medians "
              f"[of the fastest runs] (git {commit()}) ==="),
             f"command: python benchmarks/parallel_scan.py {shlex.join(sys.argv[1:])}".rstrip(),
             (f"machine: {cpu_name(processor=True)}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{args.threads} threads, {'CPU' if args.clock == 'cpu' else 'wall-clock'} time; "
              f"load average at start {load0[0]:.1f}, at end {load1[0]:.1f} (shared machine: times are pessimistic)"),
             f"took {time.perf_counter() - started:.0f} s"]
    if shapes:
        lines += ["", "Shapes:", *table([(s, results[s]) for s in shapes])]
    if sweep:
        lines += ["", "T sweep at (N, H) = (16, 256):", *table([((T, 16, 256), results[(T, 16, 256)])
                                                                for T in sweep])]
    save_report(log, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
