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

import json
import sys
import time

import torch

from common import add_run_options, records, here_header, parser, run_here, run_paths, save_report
from rnnkit.cli.caption import load_captioner
from rnnkit.data.shapes import make_shapes
from rnnkit.tasks.captioning import CaptionSet, evaluate_captions

TARGET = 0.95
TEST_SEED = 424242


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, minutes=15.0, budget="training time budget, wall clock")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default: %(default)s)")
    p.add_argument("--test-size", type=int, default=1000, help="held-out test scenes (default: %(default)s)")
    add_run_options(p, "shapes", "caption")
    args = p.parse_args(argv)
    now, out, log = run_paths("shapes", args.out, args.log)
    torch.set_num_threads(args.threads)
    cli = ["train", "caption", "--preset", "shapes", "--out", str(out), "--minutes", str(args.minutes),
           "--seed", "0", "--quiet", "--threads", str(args.threads), *args.cli_args]
    train = run_here(cli, "shapes")
    if train.returncode != 0:
        return train.returncode
    model, tokenizer, config = load_captioner(out)
    scenes = make_shapes(args.test_size, TEST_SEED, model.config.image_size)
    test = CaptionSet.from_raw(scenes.images, [[c] for c in scenes.captions],
                               [f"test{i}" for i in range(len(scenes))])
    wall1 = time.monotonic()
    m = evaluate_captions(model, test, tokenizer, batch_size=250)
    eval_wall = time.monotonic() - wall1
    evals = records(out / "metrics.jsonl")
    status = "PASS" if m["exact"] >= TARGET and train.wall <= 60 * 15 + 5 else "FAIL"
    lines = [
        *here_header(f"shapes captioning benchmark {now:%Y-%m-%d %H:%M:%S}", "shapes.py", argv, cli, train,
                     args.threads),
        f"model: {json.dumps(config['model'])}",
        f"training: {config['step']} steps (best checkpoint; {evals[-1]['step'] if evals else '?'} in all), "
        f"wall {train.wall / 60:.1f} min, process CPU {train.cpu / 60:.1f} min",
        "validation during training (step: exact match, BLEU-4): "
        + ", ".join(f"{e['step']}: {100 * e['exact']:.1f}%, {e['bleu4']:.1f}" for e in evals),
        f"test ({len(test)} held-out scenes, seed {TEST_SEED}, greedy): exact match {100 * m['exact']:.2f}% "
        f"(target >= {100 * TARGET:.0f}%), BLEU-4 {m['bleu4']:.2f}, BLEU-1 {m['bleu1']:.2f}, "
        f"loss {m['loss']:.4f} nats/word; evaluation {eval_wall:.0f} s",
        f"result: {status}",
    ]
    save_report(log, lines, record={
        "date": now.isoformat(timespec="seconds"), "exact": m["exact"], "bleu4": m["bleu4"], "train_wall_s": train.wall,
        "train_cpu_s": train.cpu, "steps": config["step"], "threads": args.threads, "cli": cli, "status": status})
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
