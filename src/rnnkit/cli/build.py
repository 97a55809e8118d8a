"""``rnnkit build``: compile the C++ engine (engine="compiled") ahead of first use."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="compile the C++ engine now (otherwise it builds on first use)",
                       description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--verbose", action="store_true", help="show the compiler's output")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import fused
    try:
        path = fused.build(verbose=args.verbose)
    except RuntimeError as e:
        print(f"rnnkit: error: the fused engine could not be built: {str(e).strip().splitlines()[0]}\n"
              f"rnnkit: everything still works with the Python BPTT loop (engine='python')", file=sys.stderr)
        return 1
    print(f"rnnkit: compiled engine ready ({path})")
    return 0
