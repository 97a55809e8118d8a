"""``rnnkit eval RUN --data FILE``: loss, and perplexity (words) or bits per character, on a text file."""
from __future__ import annotations

import argparse

import torch

from ..data import BPTTStream, batchify, read_text
from ..tasks.language_modeling import evaluate_stream
from .runs import load_lm


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run on a file",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder")
    p.add_argument("--data", required=True, help="UTF-8 text file to evaluate on")
    p.add_argument("--bptt", type=int, default=64, help="window length (the state is carried across windows)")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    model, tokenizer, config = load_lm(args.run)
    text = read_text(args.data)
    ids = torch.tensor(tokenizer.encode(text, source=args.data), dtype=torch.long)
    stream = BPTTStream(batchify(ids, 1, source=args.data), args.bptt, source=args.data)
    m = evaluate_stream(model, stream, torch.device("cpu"), config["level"])
    extra = f"bits per character {m['bpc']:.4f}" if "bpc" in m else f"perplexity {m['ppl']:.2f}"
    print(f"{args.data}: {m['tokens']:,} tokens, loss {m['loss']:.4f} nats, {extra}")
    return 0
