"""Language-model quality benchmarks: tiny Shakespeare (characters) and Penn Treebank (words).

Runs the `rnnkit train lm` command with a time budget and writes the log to benchmarks/results/.
    python benchmarks/lm.py shakespeare   # --preset shakespeare-char, 15 minutes, last 10% held out
    python benchmarks/lm.py ptb-small     # --preset zaremba-small (Zaremba et al. 2014's small model)
    python benchmarks/lm.py ptb-tied      # --preset ptb-tied (3.6M parameters), 60 minutes
    python benchmarks/lm.py awd-cpu       # --preset awd-cpu (AWD-LSTM's recipe, 5.4M parameters), 60 minutes
Data is read from ../shared/data (relative to the repository root). One thread unless the extra options name
`--threads` (the PTB result used `--threads 2`).
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys

from common import DATA, RESULTS, ROOT, cli_command, head, parser, run_cli

RUNS = {
    "shakespeare": ["--preset", "shakespeare-char", "--data-dir", str(DATA), "--minutes", "15"],
    "ptb-small": ["--preset", "zaremba-small", "--data-dir", str(DATA), "--minutes", "60"],
    "ptb-tied": ["--preset", "ptb-tied", "--data-dir", str(DATA), "--minutes", "60"],
    "awd-cpu": ["--preset", "awd-cpu", "--data-dir", str(DATA), "--minutes", "60"],
}


def main() -> int:
    p = parser(__doc__)
    p.add_argument("run", choices=sorted(RUNS))
    p.add_argument("extra", nargs=argparse.REMAINDER, help="more `rnnkit train lm` options")
    args = p.parse_args()
    if not DATA.is_dir():
        print(f"skip: {DATA} is absent", file=sys.stderr)
        return 0
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = ROOT / "runs" / f"{args.run}-{stamp}"
    log = RESULTS / f"lm-{args.run}-{stamp}.log"
    threads = [] if "--threads" in args.extra else ["--threads", "1"]      # one thread unless asked otherwise
    cmd = cli_command("train", "lm", *RUNS[args.run], "--out", str(out), *threads, "--quiet", *args.extra)
    with open(log, "w") as f:
        f.write(f"# {' '.join(cmd)}\n# commit {head()}  load {os.getloadavg()}\n")
        f.flush()
        run = run_cli(cmd, stdout=f, stderr=subprocess.STDOUT)
        f.write(f"\n# exit {run.returncode} after {run.wall:.0f} s; load {run.load_end}\n")
        f.write((out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").is_file() else "")
    print(f"log: {log}; run: {out}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
