"""``rnnkit predict RUN``: classify text with a trained classifier.

  rnnkit predict RUN "a gripping , funny film"        the label and the probability of each label
  rnnkit predict RUN "a gripping film" --explain      also each token with its attention weight (attention pooling)
  rnnkit predict RUN --file reviews.txt               one prediction per non-blank line of a plain text file
  rnnkit predict RUN --file data.tsv --out pred.tsv   the table with columns prediction, p_<label>... added
                                                      (TSV, CSV or JSONL, by extension or --format; the
                                                      output's format is --out's extension's, else the input's)
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys

import torch

from ..data import DataError, read_labelled
from ..data.labelled import LabelledData, detect_format
from ..tasks.classification import LoadedClassifier, load_classifier
from ..training.atomic import check_writable, write_text
from .errors import OptionError
from .ranges import HelpFormatter, out_path, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify text with a trained classifier",
                       formatter_class=HelpFormatter, description=__doc__)
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
    fmt = output_format(args.out, data)
    text = format_predictions(clf, data, probs, weights, fmt, where=args.out or "standard output")
    if args.out:
        write_text(args.out, text)
        print(f"rnnkit: {len(data):,} predictions written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def output_format(out: str | None, data: LabelledData) -> str:
    """The format ``--out``'s extension names (.tsv, .csv, .jsonl), else the input's (``lines``: a plain text
    file's one line per text)."""
    by_name = detect_format(out) if out else "lines"
    if by_name != "lines":
        return by_name
    return data.table.format if data.table is not None else "lines"


def _as_the_files_labels(predicted: list[str], rows: list[dict], label_column: str) -> list:
    """JSON predictions typed as the file's labels: integers where its label column holds JSON integers (QA: a
    prediction "0" never equalled the label 0); the labels' names otherwise (a run keeps them as strings)."""
    labels = [r[label_column] for r in rows if label_column in r]
    numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
    if labels and numbers and all(p.lstrip("-").isdigit() for p in predicted):
        return [int(p) for p in predicted]
    return predicted


def format_predictions(clf: LoadedClassifier, data: LabelledData, probs: torch.Tensor, weights=None,
                       fmt: str | None = None, where: str = "standard output") -> str:
    """The file's rows with ``prediction`` and ``p_<label>`` added, written as ``fmt`` (default: the input's
    format; a plain text file in ``lines``: one line per text). ``where`` names the output in messages."""
    names = clf.labels.names
    predicted = [names[int(i)] for i in probs.argmax(1)]
    table = data.table
    fmt = fmt or (table.format if table is not None else "lines")
    if fmt == "lines":
        return "".join(f"{predicted[i]}\t{_probs_text(probs[i], names)}\t{data.texts[i]}\n" for i in range(len(data)))
    columns = table.columns if table is not None else ["text"]
    rows = table.rows if table is not None else [{"text": t} for t in data.texts]
    if fmt == "jsonl":
        predicted = _as_the_files_labels(predicted, rows, clf.config.get("data", {}).get("label_column", "label"))
    added = []
    for i in range(len(data)):
        row = {"prediction": predicted[i], **{f"p_{n}": round(float(p), 6) for n, p in zip(names, probs[i])}}
        if weights is not None:
            row["attention"] = [[s, round(w, 6)] for s, w in zip(clf.encoder.pieces(data.texts[i]),
                                                                 weights[i].tolist())]
        added.append(row)
    clash = [c for c in added[0] if c in columns] if added else []
    if clash:
        raise DataError(f"the file already has column(s) {clash}; rename them to add predictions", data.source)
    if fmt == "jsonl":
        return "".join(json.dumps({**row, **extra}, ensure_ascii=False) + "\n" for row, extra in zip(rows, added))
    header = [*columns, *(added[0] if added else ())]
    table_rows = [[_field(row.get(c)) for c in columns] + _added_fields(extra) for row, extra in zip(rows, added)]
    if fmt == "tsv":               # TSV has no quoting: a field holding a tab or a line break can't be written
        for i, fields in enumerate(table_rows):
            if any("\t" in f or "\n" in f or "\r" in f for f in fields):
                raise DataError(f"row {i + 1} ({data.source}, line {data.lines[i]}) holds a tab or a line break, "
                                f"which a TSV file can't hold; write .csv or .jsonl instead", where)
        return "".join("\t".join(fields) + "\n" for fields in [header, *table_rows])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([header, *table_rows])
    return buf.getvalue()


def _field(value) -> str:
    """A JSONL value in a TSV/CSV cell: text as it is, anything else as JSON, a missing key empty."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _added_fields(extra: dict) -> list[str]:
    fields = [extra["prediction"], *(f"{p:.4f}" for k, p in extra.items() if k.startswith("p_"))]
    if "attention" in extra:
        fields.append(" ".join(f"{s}:{w:.3f}" for s, w in extra["attention"]))
    return fields
