"""The options of ``rnnkit bench`` (and ``benchmarks/engine.py``) and the report they ask for: CPU or CUDA."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..training.atomic import check_writable, write_text
from . import cpu, cuda, regularised


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``rnnkit bench`` and ``benchmarks/engine.py``."""
    p.add_argument("--quick", action="store_true", help="two shapes, short budgets (under a minute)")
    p.add_argument("--long", action="store_true", help="also full BPTT over T=10,000 (LSTM, N=32, H=512) with "
                                                       "checkpointing: the 2 GB target (a few minutes more)")
    p.add_argument("--regularised", action="store_true",
                   help="instead: what recurrent dropout, weight drop, zoneout and layer norm cost in a 2-layer "
                        "LSTM's training step, per engine (rnnkit.bench.regularised); with --device cuda beside "
                        "cuDNN's plain LSTM")
    p.add_argument("--out", type=Path, help="also save the markdown report in this file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: training step, inference and GPU memory on the first GPU instead "
                        "(rnnkit.bench.cuda)")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be refused before minutes of measuring: no GPU, --long where it doesn't apply, --out unwritable."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("rnnkit bench: error: --device cuda, but torch sees no CUDA GPU")
    if args.long and (getattr(args, "regularised", False) or args.device == "cuda"):
        raise SystemExit("rnnkit bench: error: --long is the CPU benchmark's T=10,000 run; it is not part of "
                         "--regularised or --device cuda")
    if args.out is not None:
        check_writable(args.out)


def report(args: argparse.Namespace, command: str = "rnnkit bench") -> int:
    """Run the benchmark, print the markdown and save it where ``--out`` says."""
    check_arguments(args)
    if getattr(args, "regularised", False):
        on_gpu = " --device cuda" if args.device == "cuda" else ""
        text = regularised.run(args.quick, command + " --regularised" + on_gpu, args.device)
    elif args.device == "cuda":
        text = cuda.run(args.quick, command + " --device cuda" + (" --quick" if args.quick else ""))
    else:
        text = cpu.run(args.quick, args.long, command)
    print(text)
    if args.out is not None:
        write_text(args.out, text + "\n")
        print(f"saved {args.out}", file=sys.stderr)
    return 0
