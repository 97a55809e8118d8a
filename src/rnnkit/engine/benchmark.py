"""rnnkit's engines next to torch.nn on the CPU: training step, inference, peak memory, sgemm rate, generation.

    rnnkit bench [--quick] [--long] [--out FILE]     (or python benchmarks/engine.py, which saves its table
                                                      in benchmarks/results/engine-<date>.md)
    --quick   two shapes, fewer repeats, about a minute
    --long    adds full BPTT over T=10,000 with checkpointing (the 2 GB target), a minute or two more

For each cell type and shape (T, N, H=I), in one process with 2 threads, float32: a training step (forward +
backward of the whole sequence with a dense upstream gradient) and inference (forward under no_grad) of
rnnkit's fused engine, rnnkit's Python BPTT loop, the torch.nn module and an ``nn.*Cell`` loop. Each is warmed
up, then the implementations are timed in interleaved rounds (so load from other processes hits all alike)
and the median is reported, with ratios to the torch.nn module of the same run. The Cho GRU (reset before the
matmul) has no torch.nn twin: its peers are nn.GRU and nn.GRUCell, as in the issue's targets.

GFLOP/s counts the matmuls only (6·T·N·G·H·(I+H) per training step). "sgemm" is the machine's own rate at
the same shapes: torch.mm timed alone on the step's matrix products (the input projection, T recurrent
products each way, the input and weight gradients). Peak memory is the growth of the process's peak resident
set during one LSTM training step (glibc told to return freed blocks to the OS at once, so the resident set
tracks live memory), against the minimum full BPTT must keep, 6·N·H·T floats. Generation: microseconds per
step of a 2-layer LSTM (H=512, batch 1) advanced one token at a time, as ``rnnkit sample`` does.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from . import fused, run_direction

SHAPES = [(35, 20, 200), (100, 32, 256), (100, 64, 512), (50, 128, 1024), (200, 4, 128)]
QUICK_SHAPES = [(35, 20, 200), (200, 4, 128)]
CELLS = {  # label: (rnnkit mode, torch.nn module, torch.nn cell)
    "LSTM": ("lstm", nn.LSTM, nn.LSTMCell),
    "GRU (PyTorch form)": ("gru_reset_after", nn.GRU, nn.GRUCell),
    "GRU (Cho, lecture)": ("gru", nn.GRU, nn.GRUCell),
    "RNN tanh": ("rnn_tanh", nn.RNN, nn.RNNCell),
}
IMPLS = ("torch.nn", "fused", "python", "cell loop")
GATES = {"lstm": 4, "gru_reset_after": 3, "gru": 3, "rnn_tanh": 1}


# ------------------------------------------------------------------------------------------ implementations
def implementations(mode: str, module_cls, cell_cls, T: int, N: int, H: int, device: str = "cpu") -> dict:
    """name -> run(train): one forward (and, training, one backward) of each implementation, same data.

    On CUDA each run ends with a synchronize, so wall-clock timing sees the GPU's work."""
    torch.manual_seed(0)
    x = torch.randn(T, N, H, device=device)
    grad = torch.randn(T, N, H, device=device)
    module, cell = module_cls(H, H, device=device), cell_cls(H, H, device=device)
    weights = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    h0 = torch.zeros(N, H, device=device)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    leaves = [x, *module.parameters(), *cell.parameters()]

    def step(forward):
        def run(train: bool):
            x.requires_grad_(train)
            for p in leaves:
                p.grad = None
            with torch.set_grad_enabled(train):
                y = forward()
                if train:
                    y.backward(grad)
            sync()
        return run

    def cell_loop():
        h = (h0, h0) if mode == "lstm" else h0
        outs = []
        for x_t in x.unbind(0):
            h = cell(x_t, h)
            outs.append(h[0] if mode == "lstm" else h)
        return torch.stack(outs)

    return {
        "torch.nn": step(lambda: module(x)[0]),
        "fused": step(lambda: run_direction(mode, x, h0, h0, weights, engine="fused")[0]),
        "python": step(lambda: run_direction(mode, x, h0, h0, weights, engine="python")[0]),
        "cell loop": step(cell_loop),
    }


def timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def compare(runs: dict, train: bool, budget_s: float, names=IMPLS) -> dict:
    """Seconds per run of each implementation: one warm-up each, then interleaved rounds within the budget."""
    warm = {k: timed(lambda: runs[k](train)) for k in names}
    rounds = max(3, min(20, int(budget_s / max(sum(warm.values()), 1e-9))))
    times = {k: [] for k in names}
    for _ in range(rounds):
        for k in names:
            times[k].append(timed(lambda: runs[k](train)))
    return times


# ------------------------------------------------------------------------------------------ sgemm and memory
def step_flops(G: int, T: int, N: int, H: int, I: int) -> float:
    return 6.0 * T * N * G * H * (I + H)


def sgemm_seconds(G: int, T: int, N: int, H: int, I: int) -> float:
    """torch.mm alone on a training step's products: best of 5 for each shape, times its count."""
    GH, TN = G * H, T * N
    products = [((TN, I, GH), 1), ((N, H, GH), T), ((N, GH, H), T), ((TN, GH, I), 1), ((GH, TN, I), 1),
                ((GH, TN, H), 1)]
    total = 0.0
    for (m, k, n), count in products:
        a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        reps = max(1, min(count, 50))
        best = min(timed(lambda: [torch.mm(a, b, out=out) for _ in range(reps)]) for _ in range(5)) / reps
        total += best * count
    return total


def _rss(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def peak_growth(f, warm) -> int | None:
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


SAVED_PER_STEP = {"lstm": 6, "gru_reset_after": 5, "gru": 4, "rnn_tanh": 1}   # floats per (t, n, unit) BPTT keeps


def memory_rows(shapes, cells: dict = CELLS) -> list[str]:
    """Peak memory growth of one training step per cell and shape, against what BPTT must keep: the LSTM's
    4 gates, c and h (6·N·H·T floats, the issue's minimum); the GRUs' 3 gates and h (+ h W_n for PyTorch's
    form); the RNN's h."""
    rows = []
    for label, (mode, module_cls, _) in cells.items():
        for T, N, H in shapes:
            k = max(1, round(T ** 0.5))
            x = torch.randn(T, N, H, requires_grad=True)
            grad = torch.randn(T, N, H)
            module = module_cls(H, H)
            w = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
            h0 = torch.zeros(N, H)
            variants = {
                "torch.nn": lambda xx: module(xx)[0],
                "fused": lambda xx: fused.run_fused(mode, xx, h0, h0, w, None)[0],
                "fused, checkpoint_every=√T": lambda xx: fused.run_fused(mode, xx, h0, h0, w, None,
                                                                         checkpoint_every=k)[0],
                "python": lambda xx: run_direction(mode, xx, h0, h0, w, engine="python")[0],
            }
            minimum = SAVED_PER_STEP[mode] * N * H * T * 4
            cols = []
            for fwd in variants.values():
                g = peak_growth(lambda: fwd(x).backward(grad), lambda: fwd(x[:2]).backward(grad[:2]))
                g = None if g is None else max(g, 0)          # the resident set can shrink by a page or two
                cols.append("n/a" if g is None else f"{megabytes(g)} ({g / minimum:.2f}×)")
            rows.append(f"| {label} | {T}, {N}, {H} | {megabytes(minimum)} | " + " | ".join(cols) + " |")
    header = ["| cell | (T, N, H) | BPTT's minimum | torch.nn | fused | fused, checkpoint_every=√T | python |",
              "|---" * 7 + "|"]
    return header + rows


def memory_in_subprocess(shapes, long: bool = False) -> list[str]:
    """The memory rows (and the long-sequence line) measured in a fresh process set up for it."""
    args = [sys.executable, "-m", "rnnkit.engine.benchmark", "--memory", json.dumps(shapes)] + \
        (["--long"] if long else [])
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def long_sequence_row(T: int = 10_000, N: int = 32, H: int = 512, every: int = 100) -> str:
    """Full BPTT over a long sequence with checkpointing: the issue's 2 GB budget."""
    x = torch.randn(T, N, H, requires_grad=True)
    grad = torch.randn(T, N, H)
    module = nn.LSTM(H, H)
    w = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    h0 = torch.zeros(N, H)

    def f(k):                                   # x itself, not a slice: a slice's backward makes a full-size grad
        xk, gk = (x, grad) if k == T else (x[:k], grad[:k])
        fused.run_fused("lstm", xk, h0, h0, w, None, checkpoint_every=every)[0].backward(gk)

    start = time.perf_counter()
    g = peak_growth(lambda: f(T), lambda: f(2 * every))
    took = time.perf_counter() - start
    what = "n/a" if g is None else f"{g / 2**30:.2f} GB"
    return (f"Full BPTT, LSTM T={T:,}, N={N}, H={H}, x requiring grad, fused with checkpoint_every={every}: "
            f"peak growth {what} ({took:.0f} s; the input x alone is {x.numel() * 4 / 2**30:.2f} GB).")


# ------------------------------------------------------------------------------------------ report
def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = re.search(r"Model name:\s*(.+)", out).group(1).strip()
    except (OSError, AttributeError, subprocess.SubprocessError):
        model = platform.processor() or platform.machine()
    load = "load average %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else "load unknown"
    return (f"{model}, {os.cpu_count()} logical CPUs ({load} at the start); torch {torch.__version__} "
            f"({torch.backends.cpu.get_cpu_capability()}, MKL {torch.backends.mkl.is_available()}), "
            f"{torch.get_num_threads()} threads, float32; fused engine built with {' '.join(fused._flags())}")


def ratio(t: float, ref: float) -> str:
    return f"{t * 1e3:.1f} ms ({t / ref:.2f}×)"


def generation_rows(H: int = 512, layers: int = 2, vocab: int = 65, steps: int = 200,
                    device: str = "cpu") -> list[str]:
    """Microseconds per generated token, batch 1: the stack alone and a whole character-level model step."""
    from ..layers import LSTM
    from ..models.language_model import LanguageModel, LMConfig
    torch.manual_seed(0)
    ours = LSTM(H, H, layers, device=device).eval()
    python = LSTM(H, H, layers, engine="python", device=device).eval()
    python.load_state_dict(ours.state_dict())
    theirs = ours.to_torch().eval()
    x, zeros = torch.randn(1, H, device=device), torch.zeros(layers, 1, H, device=device)
    state = (zeros, zeros)
    weights = [w for k in range(layers) for w in ours.layer_weights(k, 0)[:2]]
    lm = LanguageModel(LMConfig(vocab_size=vocab, embed_size=H, hidden_size=H, num_layers=layers)).to(device).eval()
    token = torch.tensor([1], device=device)
    lm_state = lm.step(token)[1]
    one_call = "one captured CUDA graph" if device == "cuda" else "one compiled call"
    runs = {
        "torch.nn.LSTM called per step": lambda: theirs(x.unsqueeze(0), state),
        "rnnkit layer.step, Python cell equations (engine='python')": lambda: python.step(x, state),
        f"rnnkit layer.step, {one_call}": lambda: ours.step(x, state),
        f"the {2 * layers} matrix-vector products alone (torch.mv)": lambda: [torch.mv(w, x[0]) for w in weights],
        f"rnnkit LanguageModel.step, vocabulary {vocab} (embedding, stack, decoder)": lambda: lm.step(token, lm_state),
    }
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def repeated(f):
        def run(train: bool) -> None:
            for _ in range(steps):
                f()
            sync()
        return run

    with torch.no_grad():
        times = compare({k: repeated(f) for k, f in runs.items()}, False, 3.0, names=tuple(runs))
    base = statistics.median(times["torch.nn.LSTM called per step"])
    rows = ["| what | µs per token | ×torch.nn |", "|---|---|---|"]
    for name, t in times.items():
        us = statistics.median(t) / steps * 1e6
        rows.append(f"| {name} | {us:,.0f} | {statistics.median(t) / base:.2f}× |")
    return rows


def run(quick: bool, long: bool = False, command: str = "rnnkit bench") -> str:
    torch.set_num_threads(2)
    fused.build()
    shapes = QUICK_SHAPES if quick else SHAPES
    budget = 1.0 if quick else 5.0
    date = datetime.date.today().isoformat()
    lines = [f"# rnnkit engine benchmark, {date}{' (quick)' if quick else ''}", "", f"Machine: {machine()}", "",
             f"Command: `{command}{' --quick' if quick else ''}{' --long' if long else ''}`", ""]
    train_rows, infer_rows, best_rows = [], [], []
    for label, (mode, module_cls, cell_cls) in CELLS.items():
        for T, N, H in shapes:
            runs = implementations(mode, module_cls, cell_cls, T, N, H)
            tr_all, inf_all = compare(runs, True, budget), compare(runs, False, budget / 2)
            tr = {k: statistics.median(v) for k, v in tr_all.items()}
            inf = {k: statistics.median(v) for k, v in inf_all.items()}
            G = GATES[mode]
            flops = step_flops(G, T, N, H, H)
            sgemm = sgemm_seconds(G, T, N, H, H)
            shape = f"{label} | {T}, {N}, {H}"
            train_rows.append(f"| {shape} | {tr['torch.nn'] * 1e3:.1f} | "
                              + " | ".join(ratio(tr[k], tr["torch.nn"]) for k in IMPLS[1:])
                              + f" | {flops / tr['fused'] / 1e9:.0f} | {flops / tr['torch.nn'] / 1e9:.0f}"
                              f" | {flops / sgemm / 1e9:.0f} | {100 * sgemm / tr['fused']:.0f}% |")
            infer_rows.append(f"| {shape} | {inf['torch.nn'] * 1e3:.2f} | "
                              + " | ".join(ratio(inf[k], inf["torch.nn"]) for k in IMPLS[1:]) + " |")
            best = [min(d[k]) / min(d["torch.nn"]) for d in (tr_all, inf_all) for k in IMPLS[1:]]
            best_rows.append(f"| {shape} | " + " | ".join(f"{b:.2f}×" for b in best) + " |")
            print(train_rows[-1], file=sys.stderr, flush=True)
    lines += ["## Training step (forward + backward), median; ratio to the torch.nn module", "",
              "| cell | T, N, H | torch.nn ms | fused | python loop | nn.*Cell loop | fused GFLOP/s "
              "| torch.nn GFLOP/s | sgemm GFLOP/s, same shapes | fused % of sgemm |", "|---" * 10 + "|",
              *train_rows, "", "## Inference (forward, no_grad), median; ratio to the torch.nn module", "",
              "| cell | T, N, H | torch.nn ms | fused | python loop | nn.*Cell loop |", "|---" * 6 + "|",
              *infer_rows, "", "## Ratios of the fastest rounds (less sensitive to other processes' load)", "",
              "| cell | T, N, H | train: fused | python | cell loop | inference: fused | python | cell loop |",
              "|---" * 8 + "|", *best_rows, ""]
    mem_shapes = [(35, 20, 200), (200, 4, 128)] if quick else SHAPES + [(1000, 32, 512)]
    lines += ["## Peak memory growth of a training step (x requires grad); × what BPTT must keep", "",
              *memory_in_subprocess(mem_shapes), ""]
    if long:
        lines += [*memory_in_subprocess([], long=True), ""]
    lines += [f"## Generation: a {2}-layer LSTM, H=512, batch 1, one token at a time (no_grad), median", "",
              *generation_rows(), ""]
    if hasattr(os, "getloadavg"):
        lines += ["Load average at the end: %.1f %.1f %.1f (other processes share these CPUs when it exceeds "
                  "the thread count; the ratios come from interleaved rounds, but absolute times suffer)."
                  % os.getloadavg(), ""]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``rnnkit bench`` and ``benchmarks/engine.py``."""
    p.add_argument("--quick", action="store_true", help="two shapes, short budgets (under a minute)")
    p.add_argument("--long", action="store_true", help="also full BPTT over T=10,000 (LSTM, N=32, H=512) with "
                                                       "checkpointing: the 2 GB target (a few minutes more)")
    p.add_argument("--out", type=Path, help="also save the markdown report in this file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: training step, inference and GPU memory on the first GPU instead "
                        "(rnnkit.engine.benchmark_cuda)")


def report(args: argparse.Namespace, command: str = "rnnkit bench") -> int:
    """Run the benchmark, print the markdown and save it where ``--out`` says."""
    if args.device == "cuda":
        from . import benchmark_cuda
        if not torch.cuda.is_available():
            raise SystemExit("rnnkit bench: error: --device cuda, but torch sees no CUDA GPU")
        text = benchmark_cuda.run(args.quick, command + " --device cuda" + (" --quick" if args.quick else ""))
    else:
        text = run(args.quick, args.long, command)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"saved {args.out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """Internal entry point: the memory rows, measured in a fresh process set up for it."""
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
