"""Synthetic-scenes captioning benchmark: exact-match captions on 1,000 held-out scenes.

Target (issue 7): exact match >= 95% on 1,000 held-out images within 15 minutes on the 2-core CPU.

Trains ``rnnkit train caption --preset shapes`` (fixed seeds; the preset is a small residual CNN → LSTM with
Bahdanau attention over the 8×8 grid) in this process, then captions 1,000 *test* scenes drawn from a seed used
neither for training nor for the validation scenes that pick the best checkpoint, and counts the captions that
equal the reference word for word. Appends a report to ``benchmarks/results/shapes-<date>.log``::

    python benchmarks/shapes.py                          # the preset, 15-minute budget
    python benchmarks/shapes.py --minutes 3 -- --attention none     # options after -- go to the CLI

The machine is shared with other work, so wall-clock time is pessimistic: the log records the wall time, the
process CPU time (what the run would take alone on as many cores as --threads) and the load average.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.cli.caption import load_captioner  # noqa: E402
from rnnkit.cli.main import main as rnnkit  # noqa: E402
from rnnkit.data.shapes import make_shapes  # noqa: E402
from rnnkit.tasks.captioning import CaptionSet, evaluate_captions  # noqa: E402

TARGET = 0.95
TEST_SEED = 424242


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget, wall clock (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default: %(default)s)")
    p.add_argument("--test-size", type=int, default=1000, help="held-out test scenes (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/shapes-bench-<time>)")
    p.add_argument("--log", type=Path, default=None,
                   help="report file (default: benchmarks/results/shapes-<date>.log, appended)")
    p.add_argument("cli_args", nargs="*", help="extra options for `rnnkit train caption` (after --)")
    args = p.parse_args(argv)
    now = dt.datetime.now()
    out = args.out or ROOT / "runs" / f"shapes-bench-{now:%Y%m%d-%H%M%S}"
    log = args.log or ROOT / "benchmarks" / "results" / f"shapes-{now:%Y-%m-%d}.log"
    torch.set_num_threads(args.threads)
    cli = ["train", "caption", "--preset", "shapes", "--out", str(out), "--minutes", str(args.minutes),
           "--seed", "0", "--quiet", "--threads", str(args.threads), *args.cli_args]
    load_start = os.getloadavg()
    wall0, cpu0 = time.monotonic(), time.process_time()
    code = rnnkit(cli)
    train_wall, train_cpu = time.monotonic() - wall0, time.process_time() - cpu0
    if code != 0:
        print(f"shapes benchmark: training failed (exit {code})", file=sys.stderr)
        return code
    model, tokenizer, config = load_captioner(out)
    scenes = make_shapes(args.test_size, TEST_SEED, model.config.image_size)
    test = CaptionSet.from_raw(scenes.images, [[c] for c in scenes.captions],
                               [f"test{i}" for i in range(len(scenes))])
    wall1 = time.monotonic()
    m = evaluate_captions(model, test, tokenizer, batch_size=250)
    eval_wall = time.monotonic() - wall1
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in evals if e.get("kind") == "eval"]
    status = "PASS" if m["exact"] >= TARGET and train_wall <= 60 * 15 + 5 else "FAIL"
    lines = [
        f"=== shapes captioning benchmark {now:%Y-%m-%d %H:%M:%S} (git {_git('rev-parse', '--short', 'HEAD')}) ===",
        f"command: python benchmarks/shapes.py {' '.join(argv if argv is not None else sys.argv[1:])}",
        f"cli: rnnkit {' '.join(cli)}",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} threads; load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f} "
        f"(shared machine: wall-clock times are pessimistic)",
        f"model: {json.dumps(config['model'])}",
        f"training: {config['step']} steps (best checkpoint; {evals[-1]['step'] if evals else '?'} in all), "
        f"wall {train_wall / 60:.1f} min, process CPU {train_cpu / 60:.1f} min",
        "validation during training (step: exact match, BLEU-4): "
        + ", ".join(f"{e['step']}: {100 * e['exact']:.1f}%, {e['bleu4']:.1f}" for e in evals),
        f"test ({len(test)} held-out scenes, seed {TEST_SEED}, greedy): exact match {100 * m['exact']:.2f}% "
        f"(target >= {100 * TARGET:.0f}%), BLEU-4 {m['bleu4']:.2f}, BLEU-1 {m['bleu1']:.2f}, "
        f"loss {m['loss']:.4f} nats/word; evaluation {eval_wall:.0f} s",
        f"result: {status}",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(log.with_suffix(".jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"date": now.isoformat(timespec="seconds"), "exact": m["exact"], "bleu4": m["bleu4"],
                            "train_wall_s": train_wall, "train_cpu_s": train_cpu, "steps": config["step"],
                            "threads": args.threads, "cli": cli, "status": status}) + "\n")
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
