"""Multi30k German->English benchmark: validation BLEU of `rnnkit train seq2seq --preset multi30k` within a time budget.

Target (issue 6): validation BLEU >= 28 within 60 minutes of training on the 2-core CPU with a bidirectional GRU
encoder and Bahdanau attention. For comparison, a common PyTorch reference run (bentrevett/pytorch-seq2seq,
attention notebook: BiGRU encoder, Bahdanau attention) reaches 28.3 test BLEU after 10 epochs on a GPU; without
attention 13.8-20.6. Their BLEU is torchtext's on spaCy tokens; ours is sacrebleu's (13a tokenization) on the
detokenized output, case-insensitive since the model writes lowercase (the references keep their case).

Each variant (``attention``: the preset; ``none``: the same model with ``--attention none``, the encoder's final
states as a fixed context, Cho et al. 2014) trains in turn for ``--minutes``; then its best checkpoint (by
validation BLEU, greedy) is decoded with beam 1 and beam 5 (length penalty ``--alpha``). A report is appended to
``benchmarks/results/multi30k-<date>.log`` after each variant::

    python benchmarks/multi30k.py                                 # both variants, 60 minutes each
    python benchmarks/multi30k.py --variants attention --minutes 10 -- --batch-size 64
    python benchmarks/multi30k.py --variants none --resume runs/multi30k-none-...   # an interrupted run

The machine is shared, so times are wall-clock times under whatever else runs: the load average at the start
and the end goes into the log, and the training log (the CLI's stderr) goes next to it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from common import (DATA, RESULTS, ROOT, cli_command, records, header, machine_line, missing, parser, run_cli,
                    save_report)

TARGET = 28.0


def run_variant(variant: str, args: argparse.Namespace, now: dt.datetime, log: Path) -> int:
    out = args.resume or ROOT / "runs" / f"multi30k-{variant}-{now:%Y%m%d-%H%M%S}"
    preset = "multi30k" if variant == "attention" else "multi30k-noattn"
    cmd = cli_command("train", "seq2seq", "--preset", preset, "--data-dir", str(args.data), "--out", str(out),
                      "--minutes", str(args.minutes), "--seed", str(args.seed), "--quiet",
                      *(["--resume"] if args.resume else []), *args.cli_args)
    train_log = log.with_name(f"{log.stem}-{variant}-train.log")
    with open(train_log, "a", encoding="utf-8") as f:
        f.write(f"=== {now:%Y-%m-%d %H:%M:%S} {' '.join(cmd)}\n")
        f.flush()
        run = run_cli(cmd, stdout=f, stderr=f)

    import torch
    from rnnkit.data.parallel import read_parallel
    from rnnkit.tasks.seq2seq import corpus_scores, load_seq2seq, translate

    torch.set_num_threads(1)          # as the preset trains: on a loaded 2-core machine one thread is fastest
    threads = f"{torch.get_num_threads()} thread for decoding (training: the preset's --threads 1)"
    lines = [
        *header(f"Multi30k de->en benchmark, variant {variant} ({now:%Y-%m-%d %H:%M:%S})", cmd,
                machine_line(run.load_start, run.load_end, threads=threads)),
        f"exit code: {run.returncode}; wall time {run.wall / 60:.1f} min (process: data, vocabularies, training, "
        f"validation); training log {train_log}",
        "validation curve, greedy (step, epoch, BLEU, chrF, loss):",
    ]
    evals = records(out / "metrics.jsonl")
    lines += [f"  {r['step']:>6} {r['epoch']:>3}  {r['bleu']:6.2f}  {r['chrf']:6.2f}  {r['loss']:.4f}" for r in evals]
    if (out / "config.json").is_file():
        model, src_tok, tgt_tok, config = load_seq2seq(out)
        pairs = read_parallel(args.data / "val.de", args.data / "val.en")
        for beam in (1, 5):
            tick = time.monotonic()
            results = translate(model, src_tok, tgt_tok, [s for s, _ in pairs], beam=beam, alpha=args.alpha)
            took = time.monotonic() - tick
            s = corpus_scores([r[0].text for r in results], [t for _, t in pairs], lowercase=tgt_tok.lowercase)
            lines.append(f"RESULT {variant}, beam {beam}{f' (alpha {args.alpha})' if beam > 1 else ''}: validation "
                         f"BLEU {s['bleu']:.2f}, chrF {s['chrf']:.2f} (case-insensitive) on {len(pairs):,} "
                         f"sentences, best checkpoint of step {config['step']} (epoch {config['epoch']}); decoding "
                         f"{took:.0f}s; target {TARGET:.0f} "
                         f"{'reached' if s['bleu'] >= TARGET else 'not reached'}")
            if beam == 5:
                for (src, ref), r in list(zip(pairs, results))[:3]:
                    lines.append(f"    {src}\n      -> {r[0].text}\n      (ref) {ref}")
    else:
        lines.append("RESULT: no checkpoint")
    save_report(log, lines)
    return run.returncode


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, minutes=60.0, budget="training budget per variant")
    p.add_argument("--variants", nargs="+", default=["attention", "none"], choices=("attention", "none"),
                   help="which models to train, in turn (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=1.0, help="beam search length penalty (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--data", type=Path, default=(DATA / "multi30k").resolve(),
                   help="Multi30k folder (default: %(default)s)")
    p.add_argument("--log", type=Path, default=None,
                   help="report file (default: benchmarks/results/multi30k-<date>.log, appended)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue this interrupted run folder of the one variant given (its time budget counts the "
                        "training it already had)")
    p.add_argument("cli_args", nargs="*", help="extra options for `rnnkit train seq2seq` (after --)")
    args = p.parse_args(argv)
    if args.resume is not None and len(args.variants) != 1:
        p.error("--resume continues one run: name its variant with --variants")
    if missing(args.data / "train.de", "multi30k"):
        return 2
    now = dt.datetime.now()
    log = args.log or RESULTS / f"multi30k-{now:%Y-%m-%d}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    codes = [run_variant(v, args, now, log) for v in args.variants]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
