"""``rnnkit build``: compile the fused C++ engine ahead of first use."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="compile the fused C++ engine now (otherwise it builds on first use)",
                       description=__doc__)
    p.add_argument("--verbose", action="store_true", help="show the compiler's output")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import fused
    if not hasattr(fused, "build"):
        print("rnnkit: this version has no compiled engine; the Python BPTT loop is used")
        return 0
    path = fused.build(verbose=args.verbose)
    print(f"rnnkit: fused engine ready ({path})")
    return 0
