"""Validation curves of several runs against wall-clock minutes, on one plot (for equal-time comparisons).

    python benchmarks/compare_curves.py LABEL=PATH [LABEL=PATH ...] --out PNG [--metric ppl] [--log-y]

PATH is a run's ``metrics.jsonl`` or a benchmark log that holds its lines (``benchmarks/lm.py`` copies them);
the evaluation records (``"kind": "eval"``) give the points. The table of the points goes to stdout.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.training.plots import read_metrics, save_figure  # noqa: E402


def curve(path: Path, metric: str) -> list[tuple[float, float]]:
    """(minutes, metric) of each evaluation in ``path``."""
    return [(r["seconds"] / 60, r[metric]) for r in read_metrics(path) if r.get("kind") == "eval" and metric in r]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="LABEL=PATH (metrics.jsonl or a log holding its lines)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--metric", default="ppl")
    ap.add_argument("--log-y", action="store_true")
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for spec in a.runs:
        label, _, path = spec.partition("=")
        points = curve(Path(path), a.metric)
        if not points:
            print(f"{label}: no evaluations with {a.metric!r} in {path}", file=sys.stderr)
            continue
        ax.plot(*zip(*points), marker="o", markersize=3, label=label)
        print(f"{label}: " + ", ".join(f"{m:.1f} min {v:.1f}" for m, v in points))
    ax.set_xlabel("minutes of training")
    ax.set_ylabel(f"validation {a.metric}")
    if a.log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, a.out)
    print(f"saved {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
