"""``rnnkit eval RUN ...``: evaluate a trained run on new data; what it reports depends on the run's task.

Language models: ``--data FILE`` → loss and perplexity (words) or bits per character.
Classifiers: ``--data FILE`` (TSV/CSV/JSONL with labels) → accuracy, macro-F1 and the confusion matrix.
Each task registers its evaluator in :data:`EVALUATORS` (task name → function of the parsed arguments).
"""
from __future__ import annotations

import argparse
from typing import Callable

import torch

from ..data import BPTTStream, DataError, batchify, read_text
from ..tasks.language_modeling import evaluate_stream
from ..training.checkpoint import read_config
from .predict import eval_classify
from .caption import eval_caption
from .runs import load_lm
from .translate import eval_seq2seq


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run on new data",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="evaluation file (language model: UTF-8 text; classifier: TSV/CSV/JSONL)")
    p.add_argument("--bptt", type=int, default=64, help="language model: window length (state carried across)")
    p.add_argument("--text-column", default=None, help="classifier: text column; None: the model's own")
    p.add_argument("--label-column", default=None, help="classifier: label column; None: the model's own")
    p.add_argument("--src", help="seq2seq: source file")
    p.add_argument("--tgt", help="seq2seq: reference target file")
    p.add_argument("--images", help="captioning: image folder")
    p.add_argument("--captions", help="captioning: captions file")
    p.add_argument("--format", choices=("flickr8k", "coco"), default=None, help="captioning: captions format")
    p.add_argument("--beam", type=int, default=1, help="seq2seq/captioning: beam size")
    p.set_defaults(run_command=run)


def eval_lm(args: argparse.Namespace) -> int:
    if not args.data:
        raise DataError("a language model is evaluated on a text file: give --data FILE", "command line")
    model, tokenizer, config = load_lm(args.run)
    text = read_text(args.data)
    ids = torch.tensor(tokenizer.encode(text, source=args.data), dtype=torch.long)
    stream = BPTTStream(batchify(ids, 1, source=args.data), args.bptt, source=args.data)
    m = evaluate_stream(model, stream, torch.device("cpu"), config["level"])
    extra = f"bits per character {m['bpc']:.4f}" if "bpc" in m else f"perplexity {m['ppl']:.2f}"
    print(f"{args.data}: {m['tokens']:,} tokens, loss {m['loss']:.4f} nats, {extra}")
    return 0


EVALUATORS: dict[str, Callable[[argparse.Namespace], int]] = {"lm": eval_lm, "classify": eval_classify,
                                                             "seq2seq": eval_seq2seq}

EVALUATORS["caption"] = eval_caption

def run(args: argparse.Namespace) -> int:
    task = read_config(args.run).get("task")
    if task not in EVALUATORS:
        raise DataError(f"no evaluator for task {task!r}", args.run)
    return EVALUATORS[task](args)
