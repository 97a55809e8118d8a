"""``rnnkit eval RUN ...``: evaluate a trained run on new data; what it reports depends on the run's task.

Language models: ``--data FILE`` → loss and perplexity (words) or bits per character.
Classifiers: ``--data FILE`` (TSV/CSV/JSONL with labels) → accuracy, macro-F1 and the confusion matrix.
Seq2seq: ``--src FILE --tgt FILE`` → BLEU, chrF and exact match. Captioners: ``--images DIR --captions FILE``
→ BLEU-1..4 and exact match. Each task's module evaluates its runs (``evaluate_run``); this command checks the
options that task needs and prints what it returns.
"""
from __future__ import annotations

import argparse
from typing import Callable

from ..data import DataError
from ..tasks import captioning, classification, language_modeling, seq2seq
from ..training.checkpoint import read_config
from .errors import OptionError
from .ranges import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run on new data",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="evaluation file (language model: UTF-8 text; classifier: TSV/CSV/JSONL)")
    p.add_argument("--bptt", type=positive_int, default=64, help="language model: window length (state carried across)")
    p.add_argument("--text-column", default=None, help="classifier: text column; None: the model's own")
    p.add_argument("--label-column", default=None, help="classifier: label column; None: the model's own")
    p.add_argument("--src", help="seq2seq: source file")
    p.add_argument("--tgt", help="seq2seq: reference target file")
    p.add_argument("--images", help="captioning: image folder")
    p.add_argument("--captions", help="captioning: captions file")
    p.add_argument("--format", choices=("flickr8k", "coco"), default=None, help="captioning: captions format")
    p.add_argument("--beam", type=positive_int, default=1, help="seq2seq/captioning: beam size")
    p.set_defaults(run_command=run)


def _lm(args: argparse.Namespace) -> str:
    if not args.data:
        raise OptionError("a language model is evaluated on a text file: give --data FILE")
    return language_modeling.evaluate_run(args.run, args.data, bptt=args.bptt)


def _classify(args: argparse.Namespace) -> str:
    if not args.data:
        raise OptionError("a classifier is evaluated on a labelled file: give --data FILE (TSV/CSV/JSONL)")
    return classification.evaluate_run(args.run, args.data, args.text_column, args.label_column)


def _seq2seq(args: argparse.Namespace) -> str:
    if not (args.src and args.tgt):
        raise OptionError("a seq2seq run is evaluated on parallel files: give --src FILE --tgt FILE")
    return seq2seq.evaluate_run(args.run, args.src, args.tgt, beam=args.beam)


def _caption(args: argparse.Namespace) -> str:
    if not args.images or not args.captions:
        raise OptionError("a captioner is evaluated on images with captions: give --images DIR --captions FILE")
    return captioning.evaluate_run(args.run, args.images, args.captions, args.format, beam=args.beam)


EVALUATORS: dict[str, Callable[[argparse.Namespace], str]] = {
    "lm": _lm, "classify": _classify, "seq2seq": _seq2seq, "caption": _caption}


def run(args: argparse.Namespace) -> int:
    task = read_config(args.run).get("task")
    if task not in EVALUATORS:
        raise DataError(f"no evaluator for task {task!r}", args.run)
    print(EVALUATORS[task](args))
    return 0
