"""``rnnkit experiment adding|copy``: long-range memory, RNN vs LSTM vs GRU with the same training budget;
``rnnkit experiment parallel``: the training step's time against T, sequential cells against the scanned ones.

    rnnkit experiment adding --delays 10 50 100 --out runs/adding
    rnnkit experiment copy --delays 10 20 --length 5 --steps 3000 --out runs/copy
    rnnkit experiment parallel --delays 64 256 1024 4096 --batch-size 16 --hidden-size 256 --out runs/parallel

With the defaults (2000 steps of 64 sequences, hidden 64, Adam 5e-3, clip 1, LSTM forget bias 1, seed 0), at
T=100 the LSTM and the GRU reach an MSE below 0.01 and the tanh RNN stays at the baseline
(benchmarks/adding.py).

Each cell is trained at each delay for the same number of steps, batch size, learning rate, clipping and hidden
size, on the same data (same seed), then evaluated on a fixed held-out batch. Prints a table of the final error
against the delay (the adding problem: MSE, remembering nothing gives 0.167; the copy task: the fraction of
recalled symbols that are wrong, guessing gives 1 - 1/alphabet) and writes ``results.json``, ``results.md``
and ``<task>.png`` (error against delay, and the training curves at the longest delay) into ``--out``.
The tasks are defined in :mod:`rnnkit.analysis.memory_tasks`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from ..cells.spec import CELL_NAMES
from ..engine.resolve import ENGINES
from .options import ENGINE_HELP, check_cells_run
from .ranges import (HelpFormatter, finite_float, integer, non_negative_float, non_negative_int, optional, out_path,
                     positive_float, positive_int, seed_int, thread_count)


def add_parser(sub) -> None:
    p = sub.add_parser("experiment", help="long-range memory (adding problem, copy task); the step's time against T "
                                          "(parallel)",
                       formatter_class=HelpFormatter, description=__doc__)
    p.add_argument("task", choices=("adding", "copy", "parallel"), help="the experiment")
    p.add_argument("--delays", type=integer(2), nargs="+", default=None,
                   help="adding: sequence lengths T; copy: blanks between the symbols and the delimiter; parallel: "
                        "sequence lengths T (default: 10 50 100; parallel: 64 256 1024 4096)")
    p.add_argument("--rounds", type=positive_int, default=5, help="parallel: timed rounds per length (median)")
    p.add_argument("--cells", nargs="+", choices=CELL_NAMES, default=["rnn", "lstm", "gru"], help="cells to compare")
    p.add_argument("--steps", type=positive_int, default=2000, help="training steps per cell and delay (the budget)")
    p.add_argument("--minutes", type=optional(positive_float, "no time limit"), default=None,
                   help="also stop each run after this many minutes")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sequences per step")
    p.add_argument("--hidden-size", type=positive_int, default=64, help="hidden units")
    p.add_argument("--layers", type=positive_int, default=1, help="stacked layers")
    p.add_argument("--lr", type=positive_float, default=5e-3, help="Adam learning rate")
    p.add_argument("--clip", type=non_negative_float.with_note("0 turns clipping off"), default=1.0,
                   help="clip the gradient norm to this (0: off)")
    p.add_argument("--forget-bias", type=finite_float, default=1.0, help="LSTM forget-gate bias at initialisation")
    p.add_argument("--length", type=positive_int, default=10, help="copy: symbols to remember")
    p.add_argument("--alphabet", type=positive_int, default=8, help="copy: distinct symbols")
    p.add_argument("--eval-size", type=positive_int, default=1000, help="held-out sequences")
    p.add_argument("--eval-every", type=non_negative_int.with_note("0: only at the end"), default=0,
                   help="also evaluate every N steps (0: only at the end)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP)
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (weights and data)")
    p.add_argument("--threads", type=optional(thread_count, "torch's choice", zero=True), default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=out_path, default=None, help="folder for results.json, results.md and the plot")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import experiments as E
    from ..training.atomic import check_writable, write_json, write_text
    if args.task != "parallel":                   # before the work and its folder: one line, at once
        check_cells_run(args.cells, args.engine, args.layers)
    if args.out:                                  # an unwritable --out too
        check_writable(args.out, folder=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.task == "parallel":
        return run_parallel(args)
    args.delays = args.delays or [10, 50, 100]
    task_options = {"length": args.length, "alphabet": args.alphabet} if args.task == "copy" else {}
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    results = E.run_experiment(args.task, args.cells, args.delays, task_options=task_options, progress=progress,
                               steps=args.steps, minutes=args.minutes, batch_size=args.batch_size,
                               hidden_size=args.hidden_size, num_layers=args.layers, lr=args.lr,
                               clip=args.clip or None, forget_bias=args.forget_bias, eval_size=args.eval_size,
                               eval_every=args.eval_every, engine=args.engine, seed=args.seed)
    total = time.monotonic() - started
    budget = (f"{args.steps} steps x batch {args.batch_size}, hidden {args.hidden_size}, Adam lr {args.lr:g}, "
              f"clip {args.clip:g}, seed {args.seed}")
    table = E.results_table(results)
    header = f"{args.task}: held-out error after the same budget ({budget}); {total:.0f} s in all, " \
             f"{torch.get_num_threads()} torch thread(s)"
    print(header)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", {"task": args.task, "options": vars(args) | {"run_command": None},
                                          "seconds": total, "results": [r.to_dict() for r in results]})
        write_text(out / "results.md", header + "\n\n" + table + "\n")
        E.plot_results(results, out / f"{args.task}.png", f"{args.task}: {budget}")
        print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}, {out / (args.task + '.png')}")
    return 0


def run_parallel(args: argparse.Namespace) -> int:
    """Time per training step against T (:mod:`rnnkit.analysis.parallel`): the table, and with --out the PNG."""
    from ..analysis import parallel as P
    from ..training.atomic import write_json, write_text
    lengths = args.delays or [64, 256, 1024, 4096]
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = P.measure(lengths, args.batch_size, args.hidden_size, args.rounds, progress)
    header = (f"parallel: one layer's training step (forward + backward), N = {args.batch_size}, H = "
              f"{args.hidden_size}, median of {args.rounds}, {torch.get_num_threads()} torch thread(s)")
    print(header)
    print(P.table(results))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", {"task": "parallel", "options": vars(args) | {"run_command": None},
                                          "seconds": {str(T): r for T, r in results.items()}})
        write_text(out / "results.md", header + "\n\n" + P.table(results) + "\n")
        P.plot(results, out / "parallel.png", header.replace(", median", ",\nmedian"))
        print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}, {out / 'parallel.png'}")
    return 0
