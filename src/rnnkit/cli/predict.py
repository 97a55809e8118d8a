"""``rnnkit predict RUN``: classify text with a trained classifier.

  rnnkit predict RUN "a gripping , funny film"        the label and the probability of each label
  rnnkit predict RUN "a gripping film" --explain      also each token with its attention weight (attention pooling)
  rnnkit predict RUN --file reviews.txt               one prediction per line of a plain text file
  rnnkit predict RUN --file data.tsv --out pred.tsv   the table with columns prediction, p_<label>... added
                                                      (TSV, CSV or JSONL, by extension or --format)
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys

import torch

from ..data import DataError, read_labelled
from ..data.labelled import LabelledData
from ..tasks.classification import LoadedClassifier, load_classifier
from ..training.atomic import check_writable, write_text
from .errors import OptionError
from .ranges import out_path, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify text with a trained classifier",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder written by `rnnkit train classify`")
    p.add_argument("text", nargs="*", help="texts to classify, each one argument (quote it) (default: none)")
    p.add_argument("--file", help="classify every row of this file instead (default: none)")
    p.add_argument("--format", choices=("auto", "tsv", "csv", "jsonl", "lines"), default="auto",
                   help="--file's format; auto: by extension (.tsv, .csv, .jsonl; anything else is one text per "
                        "line) (default: %(default)s)")
    p.add_argument("--text-column", default=None,
                   help="--file's text column (default: the one the model was trained with)")
    p.add_argument("--out", type=out_path, default=None,
                   help="write --file's predictions here (default: standard output)")
    p.add_argument("--explain", action="store_true",
                   help="print each token with its attention weight (attention pooling only) (default: off)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="texts per batch (default: %(default)s)")
    p.set_defaults(run_command=run, more_texts="text")


def _probs_text(probs: torch.Tensor, names: list[str]) -> str:
    return "\t".join(f"p({n})={float(p):.4f}" for n, p in zip(names, probs))


def run(args: argparse.Namespace) -> int:
    clf = load_classifier(args.run)
    if args.explain and clf.model.config.pooling != "attention":
        raise OptionError(f"--explain shows attention weights, but this model uses {clf.model.config.pooling!r} "
                        f"pooling (train with --pooling attention)", args.run)
    if args.file and args.text:
        raise OptionError("give texts or --file, not both")
    if not args.file and not args.text:
        raise OptionError("nothing to classify: give a text or --file FILE")
    if args.out and not args.file:
        raise OptionError("--out is for --file's predictions")
    if args.out:
        check_writable(args.out)                  # before predicting: an unwritable --out is one line, at once
    if args.file:
        return predict_file(clf, args)
    for i, text in enumerate(args.text):
        if not text.strip():
            raise OptionError(f"text {i + 1} is empty")
    probs, weights = clf.predict(args.text, args.batch_size, attention=args.explain, source="command line")
    names = clf.labels.names
    for i, text in enumerate(args.text):
        line = f"{names[int(probs[i].argmax())]}\t{_probs_text(probs[i], names)}"
        print(line + (f"\t{text}" if len(args.text) > 1 else ""))
        if args.explain:
            for piece, w in zip(clf.encoder.pieces(text), weights[i].tolist()):
                print(f"  {w:.3f}  {'#' * round(w * 40):<40}  {piece}")
    return 0



def predict_file(clf: LoadedClassifier, args: argparse.Namespace) -> int:
    column = args.text_column or clf.config.get("data", {}).get("text_column", "sentence")
    data = read_labelled(args.file, text_column=column, label_column=None, fmt=args.format, labelled=False)
    probs, weights = clf.predict(data.texts, args.batch_size, attention=args.explain, source=data.source,
                                 lines=data.lines)
    text = format_predictions(clf, data, probs, weights)
    if args.out:
        write_text(args.out, text)
        print(f"rnnkit: {len(data):,} predictions written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def format_predictions(clf: LoadedClassifier, data: LabelledData, probs: torch.Tensor, weights=None) -> str:
    """The file's rows with ``prediction`` and ``p_<label>`` added (a plain text file: one line per text)."""
    names = clf.labels.names
    predicted = [names[int(i)] for i in probs.argmax(1)]
    table = data.table
    extra = ["prediction", *(f"p_{n}" for n in names)]
    if weights is not None:
        extra.append("attention")

    def values(i: int) -> list[str]:
        v = [predicted[i], *(f"{float(p):.4f}" for p in probs[i])]
        if weights is not None:
            pieces = clf.encoder.pieces(data.texts[i])
            v.append(" ".join(f"{s}:{w:.3f}" for s, w in zip(pieces, weights[i].tolist())))
        return v

    if table is None or table.format == "lines":
        return "".join(f"{predicted[i]}\t{_probs_text(probs[i], names)}\t{data.texts[i]}\n" for i in range(len(data)))
    clash = [c for c in extra if c in table.columns]
    if clash:
        raise DataError(f"the file already has column(s) {clash}; rename them to add predictions", data.source)
    if table.format == "jsonl":
        out = []
        for i, row in enumerate(table.rows):
            added = {"prediction": predicted[i], **{f"p_{n}": round(float(p), 6) for n, p in zip(names, probs[i])}}
            if weights is not None:
                added["attention"] = [[s, round(w, 6)] for s, w in
                                      zip(clf.encoder.pieces(data.texts[i]), weights[i].tolist())]
            out.append(json.dumps({**row, **added}, ensure_ascii=False) + "\n")
        return "".join(out)
    if table.format == "tsv":      # fields read without quoting hold no tab or newline: written back as they were
        lines = ["\t".join([*table.columns, *extra])]
        lines += ["\t".join([*(row[c] for c in table.columns), *values(i)]) for i, row in enumerate(table.rows)]
        return "\n".join(lines) + "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*table.columns, *extra])
    for i, row in enumerate(table.rows):
        writer.writerow([*(row[c] for c in table.columns), *values(i)])
    return buf.getvalue()
