"""Training speed of a language model on a GPU, end to end: ``rnnkit train lm`` with each engine, same settings.

    python benchmarks/gpu_lm.py [--steps 150] [--out DIR] [--device cuda]

Trains a 2x512 character-level model on Python's standard library (the demo's corpus) for a fixed number of
steps with each (cell, engine): the lecture's GRU through the CUDA-graph engine (``auto``) and through the
Python loop, and the cuDNN cells (LSTM, PyTorch's GRU) through ``auto``. Reports training steps per second from
each run's metrics.jsonl (the trainer's own clock, evaluation excluded) and the validation loss it reached.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import PIPE, cli_command, records, run_cli

RUNS = [("gru", "auto"), ("gru", "python"), ("lstm", "auto"), ("gru-torch", "auto")]


def train(cell: str, engine: str, steps: int, out: Path, device: str = "cuda") -> dict:
    run_dir = out / f"{cell}-{engine}"
    cmd = cli_command("train", "lm", "--dataset", "stdlib", "--out", str(run_dir), "--cell", cell,
                      "--engine", engine, "--device", device, "--hidden-size", "512", "--layers", "2",
                      "--batch-size", "64", "--bptt", "64", "--eval-batch-size", "256", "--max-steps", str(steps),
                      "--log-every", "10", "--quiet", "--optimizer", "adam", "--lr", "0.002")
    done = run_cli(cmd, stdout=PIPE, stderr=PIPE)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    metrics = run_dir / "metrics.jsonl"
    train_records, evals = records(metrics, "train"), records(metrics)
    first, last = train_records[0], train_records[-1]
    rate = (last["step"] - first["step"]) / max(last["seconds"] - first["seconds"], 1e-9)
    return {"steps/s": round(rate, 2), "valid loss": round(evals[-1]["loss"], 4) if evals else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--device", default="cuda", help="cuda (the point), or cpu to try the script")
    p.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="rnnkit-gpu-lm-"))
    print(f"{args.steps} steps of a 2x512 char model, batch 64 x 64 steps, Adam; {args.device}\n\n"
          "| cell | engine | result |\n|---|---|---|", flush=True)
    for cell, engine in RUNS:
        print(f"| {cell} | {engine} | {json.dumps(train(cell, engine, args.steps, out, args.device))} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
