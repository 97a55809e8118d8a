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

import sys
import time

from common import PIPE, add_run_options, cli_command, header, machine_line, parser, run_cli, run_paths, save_report

TARGET = 0.99


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, minutes=4.5)
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default: %(default)s)")
    add_run_options(p, "dates", "seq2seq")
    args = p.parse_args(argv)
    now, out, log = run_paths("dates", args.out, args.log)
    cmd = cli_command("train", "seq2seq", "--preset", "dates", "--out", str(out), "--minutes", str(args.minutes),
                      "--seed", str(args.seed), "--quiet", *args.cli_args)
    run = run_cli(cmd, out / "metrics.jsonl", stderr=PIPE, poll=1)

    import torch
    from rnnkit.data.dates import dates_splits
    from rnnkit.tasks.seq2seq import load_seq2seq, translate

    torch.set_num_threads(1)
    evals, seen = run.evals, run.seen
    lines = [
        *header(f"dates benchmark {now:%Y-%m-%d %H:%M:%S}", cmd, machine_line(run.load_start, run.load_end)),
        f"exit code: {run.returncode}; wall time {run.wall / 60:.2f} min (process: data generation, training, "
        f"validation)",
        "validation curve on 1,000 pairs (step, epoch, seconds since start, exact match, BLEU, loss):",
    ]
    lines += [f"  {r['step']:>6} {r['epoch']:>3} {seen[r['step']]:>6.0f}s  {r['exact']:.4f}  {r['bleu']:6.2f}  "
              f"{r['loss']:.4f}" for r in evals]
    first = next((r for r in evals if r["exact"] >= TARGET), None)
    if first:
        lines.append(f"validation exact match first >= {TARGET:.2f} at step {first['step']}, "
                     f"{seen[first['step']] / 60:.1f} min after the start")
    if run.returncode == 0:
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
    lines += ["  " + line for line in run.stderr.strip().splitlines()[-4:]]
    save_report(log, lines)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
