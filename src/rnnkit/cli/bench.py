"""``rnnkit bench``: rnnkit's engines next to torch.nn on this machine, as a markdown table.

Training step, inference and peak memory for the LSTM, both GRUs and the RNN at five shapes, the machine's own
sgemm rate at the same shapes, and the generation step; medians of interleaved rounds after a warm-up, ratios
to torch.nn measured in the same process. Details: :mod:`rnnkit.bench`.
"""
from __future__ import annotations

import argparse
import sys

from .ranges import PathText


def add_parser(sub) -> None:
    from ..bench.report import add_arguments
    p = sub.add_parser("bench", help="benchmark the engines against torch.nn on this machine (about 10 minutes)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    for action in p._actions:                 # the report's file: a name, not "" (ranges live in the CLI)
        if "--out" in action.option_strings:
            action.type = PathText(as_path=True)
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.report import check_arguments, report
    from ..engine import fused
    check_arguments(args)                     # before the build and the measuring
    try:
        if args.device == "cpu":
            fused.build()
    except RuntimeError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 1
    return report(args)
