"""``rnnkit sample RUN``: generate text from a trained language model, streamed to stdout."""
from __future__ import annotations

import argparse
import sys

from ..decoding import generate
from ..tasks.language_modeling import load_run
from .ranges import non_negative_float, optional, positive_int, seed_int, unit_interval_open


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a language model",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder written by `rnnkit train lm`")
    p.add_argument("--prime", default="", help="text fed to the model first (once); generation continues it")
    p.add_argument("--length", type=positive_int, default=500, help="tokens to generate")
    p.add_argument("--temperature", type=non_negative_float.with_note("0: greedy"), default=0.8,
                   help="0 is greedy (argmax)")
    p.add_argument("--top-k", type=optional(positive_int, "all tokens"), default=None,
                   help="sample among the k most likely tokens only")
    p.add_argument("--top-p", type=optional(unit_interval_open, "all tokens"), default=None,
                   help="nucleus sampling: the smallest set with this mass")
    p.add_argument("--seed", type=optional(seed_int, "a fresh random seed"), default=None,
                   help="random seed for a reproducible sample")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    model, tokenizer, _ = load_run(args.run)
    pieces = generate(model, tokenizer, args.prime, args.length, args.temperature, args.top_k, args.top_p,
                      args.seed)                                   # checks the prime before anything is written
    out = sys.stdout
    word_level = getattr(tokenizer, "eos_id", None) is not None
    out.write(args.prime + (" " if word_level and args.prime and not args.prime[-1].isspace() else ""))
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
    return 0
