"""The engine benchmark (issue 4): ``rnnkit bench`` with its table saved in benchmarks/results/engine-<date>.md.

    python benchmarks/engine.py            # full run, about 10 minutes
    python benchmarks/engine.py --long     # plus full BPTT over T=10,000 with checkpointing (the 2 GB target)
    python benchmarks/engine.py --quick    # two shapes, about a minute
    python benchmarks/engine.py --device cuda   # on the first GPU: cuDNN, the CUDA-graph engine, the loops

What it measures and how: :mod:`rnnkit.bench`.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.bench.report import add_arguments, report  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args()
    if args.out is None and not args.quick:
        kind = "engine-cuda" if args.device == "cuda" else "engine"
        args.out = ROOT / "benchmarks" / "results" / f"{kind}-{datetime.date.today().isoformat()}.md"
    return report(args, command="python benchmarks/engine.py")


if __name__ == "__main__":
    sys.exit(main())
