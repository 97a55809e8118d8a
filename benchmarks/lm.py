"""Language-model quality benchmarks: tiny Shakespeare (characters) and Penn Treebank (words).

Runs the `rnnkit train lm` command with a time budget and writes the log to benchmarks/results/.
    python benchmarks/lm.py shakespeare   # --preset shakespeare-char, 15 minutes, last 10% held out
    python benchmarks/lm.py ptb-small     # --preset zaremba-small (Zaremba et al. 2014's small model)
    python benchmarks/lm.py ptb-tied      # --preset ptb-medium-tied, 60 minutes, <= 5M parameters
Data is read from ../shared/data (relative to the repository root).
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RUNS = {
    "shakespeare": ["--preset", "shakespeare-char", "--data-dir", str(DATA), "--minutes", "15"],
    "ptb-small": ["--preset", "zaremba-small", "--data-dir", str(DATA), "--minutes", "60"],
    "ptb-tied": ["--preset", "ptb-medium-tied", "--data-dir", str(DATA), "--minutes", "60"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=sorted(RUNS))
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more `rnnkit train lm` options")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skip: {DATA} is absent", file=sys.stderr)
        return 0
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = ROOT / "runs" / f"{args.run}-{stamp}"
    log = ROOT / "benchmarks" / "results" / f"lm-{args.run}-{stamp}.log"
    cmd = [sys.executable, "-m", "rnnkit.cli.main", "train", "lm", *RUNS[args.run], "--out", str(out),
           "--threads", "1", *args.extra]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    with open(log, "w") as f:
        f.write(f"# {' '.join(cmd)}\n# commit {commit.strip()}  load {os.getloadavg()}\n")
        f.flush()
        t0 = time.time()
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        f.write(f"\n# exit {code} after {time.time() - t0:.0f} s; load {os.getloadavg()}\n")
        f.write((out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").is_file() else "")
    print(f"log: {log}; run: {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
