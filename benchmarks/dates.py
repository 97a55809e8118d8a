"""Synthetic dates benchmark: exact match on 2,000 held-out dates after `rnnkit train seq2seq --preset dates`.

Target (issue 6): >= 99% exact match on 2,000 held-out examples within 5 minutes of training on the 2-core CPU.
The held-out examples are :func:`rnnkit.data.dates.dates_splits`' test split for the run's seed: no source
string of it occurs in the training or validation pairs.

Runs the CLI as a subprocess (fixed seed, time budget ``--minutes``), then loads the best checkpoint and
decodes the held-out set greedily and with beam search. Appends a report to
``benchmarks/results/dates-<date>.log``::

    python benchmarks/dates.py                          # the preset, 4.5 minutes of training
    python benchmarks/dates.py --minutes 3 -- --hidden-size 96     # options after -- go to the CLI

The machine is shared, so the time is wall-clock time under whatever else runs: the load average at the
start and the end goes into the log.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
TARGET = 0.99


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _evals(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:      # a line being written
            continue
        if record.get("kind") == "eval":
            out.append(record)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=4.5, help="training time budget (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/dates-bench-<time>)")
    p.add_argument("--log", type=Path, default=None,
                   help="report file (default: benchmarks/results/dates-<date>.log, appended)")
    p.add_argument("cli_args", nargs="*", help="extra options for `rnnkit train seq2seq` (after --)")
    args = p.parse_args(argv)
    now = dt.datetime.now()
    out = args.out or ROOT / "runs" / f"dates-bench-{now:%Y%m%d-%H%M%S}"
    log = args.log or ROOT / "benchmarks" / "results" / f"dates-{now:%Y-%m-%d}.log"
    cmd = [sys.executable, "-m", "rnnkit.cli.main", "train", "seq2seq", "--preset", "dates", "--out", str(out),
           "--minutes", str(args.minutes), "--seed", str(args.seed), "--quiet", *args.cli_args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    load_start = os.getloadavg()
    start = time.monotonic()
    seen: dict[int, float] = {}                 # eval step -> seconds since start when it appeared
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=err, text=True)
        while proc.poll() is None:
            for r in _evals(out / "metrics.jsonl"):
                seen.setdefault(r["step"], time.monotonic() - start)
            time.sleep(1)
        wall = time.monotonic() - start
        err.seek(0)
        stderr_text = err.read()
    load_end = os.getloadavg()

    import torch
    from rnnkit.data.dates import dates_splits
    from rnnkit.tasks.seq2seq import load_seq2seq, translate

    torch.set_num_threads(1)
    lines = [
        f"=== dates benchmark {now:%Y-%m-%d %H:%M:%S} ===",
        f"command: {' '.join(cmd)}",
        f"commit: {_git('rev-parse', '--short', 'HEAD')}"
        f"{' (+ uncommitted changes)' if _git('status', '--porcelain') else ''}",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; load average at start "
        f"{load_start[0]:.1f}, at end {load_end[0]:.1f} (shared machine: times are pessimistic)",
        f"exit code: {proc.returncode}; wall time {wall / 60:.2f} min (process: data generation, training, "
        f"validation)",
    ]
    evals = _evals(out / "metrics.jsonl")
    for r in evals:
        seen.setdefault(r["step"], wall)
    lines.append("validation curve on 1,000 pairs (step, epoch, seconds since start, exact match, BLEU, loss):")
    lines += [f"  {r['step']:>6} {r['epoch']:>3} {seen[r['step']]:>6.0f}s  {r['exact']:.4f}  {r['bleu']:6.2f}  "
              f"{r['loss']:.4f}" for r in evals]
    first = next((r for r in evals if r["exact"] >= TARGET), None)
    if first:
        lines.append(f"validation exact match first >= {TARGET:.2f} at step {first['step']}, "
                     f"{seen[first['step']] / 60:.1f} min after the start")
    if proc.returncode == 0:
        model, src_tok, tgt_tok, config = load_seq2seq(out)
        data = config["data"]
        _, _, test = dates_splits(data["train"], data["valid"], 2000, seed=data["seed"])
        for beam in (1, 5):
            tick = time.monotonic()
            results = translate(model, src_tok, tgt_tok, [s for s, _ in test], beam=beam, alpha=1.0,
                                batch_size=250)
            took = time.monotonic() - tick
            exact = sum(r[0].text == t for r, (_, t) in zip(results, test)) / len(test)
            wrong = [(s, t, r[0].text) for r, (s, t) in zip(results, test) if r[0].text != t]
            lines.append(f"RESULT beam {beam}: held-out exact match {exact:.4f} on {len(test):,} examples "
                         f"({len(wrong)} wrong; decoding {took:.1f}s); target {TARGET:.2f} "
                         f"{'reached' if exact >= TARGET else 'NOT reached'}")
            lines += [f"    wrong: {s!r} -> {h!r} (expected {t!r})" for s, t, h in wrong[:8]]
    lines.append("cli stderr (last lines):")
    lines += ["  " + line for line in stderr_text.strip().splitlines()[-4:]]
    report = "\n".join(lines) + "\n\n"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(report)
    sys.stdout.write(report)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
