"""``rnnkit demo``: a character-level LSTM learns Python from the standard library's own source files.

Prints a sample before training, trains with a progress bar for a few minutes, prints a sample after, and
says where the run was saved. Everything is on this machine: no download.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..decoding import generate
from ..training import distributed as dist
from ..training.atomic import check_writable
from ..tasks.language_modeling import load_run
from . import train_lm
from .errors import OptionError
from .ranges import optional, out_path, positive_float, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train a char-LSTM on Python's standard library and sample from it",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("--out", type=out_path, default="runs/demo",
                   help="run folder (a demo's earlier run there is replaced; any other folder's files are refused)")
    p.add_argument("--minutes", type=positive_float, default=3.0, help="training time budget")
    p.add_argument("--max-steps", type=optional(positive_int, "--minutes decides", zero=True), default=None,
                   help="stop after this many steps instead")
    p.add_argument("--length", type=positive_int, default=300, help="characters per sample")
    p.add_argument("--prime", default="def ", help="text the samples start from")
    p.set_defaults(run_command=run)


def _sample(title: str, model, tokenizer, prime: str, length: int) -> None:
    pieces = generate(model, tokenizer, prime, length, temperature=0.7, seed=0)    # checks the prime first
    print(f"\n----- {title} -----\n{prime}", end="")
    for piece in pieces:
        print(piece, end="", flush=True)
    print("\n" + "-" * (12 + len(title)))


def _demo_run(folder: str) -> bool:
    """Whether ``folder`` holds a run of this demo (its options: the stdlib corpus, the char-small preset)."""
    try:
        o = json.loads((Path(folder) / "options.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(o, dict) and o.get("dataset") == "stdlib" and o.get("preset") == "char-small"


def run(args: argparse.Namespace) -> int:
    existed = Path(args.out).exists()
    if existed and Path(args.out).is_dir() and any(Path(args.out).iterdir()) and not _demo_run(args.out):
        raise OptionError(f"{args.out} holds files that are not a demo's run (the demo replaces only its own); "
                          f"choose another --out", "--out")
    check_writable(args.out, folder=True)        # before any work: an unwritable --out is one line, at once
    if not existed:
        Path(args.out).rmdir()                   # (training creates it, and removes it again should it fail)
    train_args = ["lm", "--dataset", "stdlib", "--preset", "char-small", "--out", args.out, "--minutes",
                  str(args.minutes), "--eval-every", "200"]
    if args.max_steps:
        train_args += ["--max-steps", str(args.max_steps)]
    if _demo_run(args.out):
        train_args.append("--force")             # a new demo replaces the last one (any other folder is kept)
    parser = argparse.ArgumentParser(prog="rnnkit train")
    train_lm.add_parser(parser.add_subparsers())
    targs = parser.parse_args(train_args)
    options = train_lm.resolved_options(targs)
    budget = f"{args.max_steps} steps" if args.max_steps else f"{args.minutes:g} minutes"
    print(f"rnnkit demo: a {options['layers']}x{options['hidden_size']} character-level LSTM learns to write "
          f"Python from this interpreter's standard library, for {budget}.", file=sys.stderr)
    # An untrained model with the same vocabulary, to show where training starts.
    from ..data import CharTokenizer, build_stdlib_corpus
    from ..models.language_model import LanguageModel, LMConfig
    corpus = build_stdlib_corpus()
    tokenizer = CharTokenizer.build(corpus.train + corpus.valid)
    untrained = LanguageModel(LMConfig(vocab_size=tokenizer.vocab_size, embed_size=options["embed_size"],
                                       hidden_size=options["hidden_size"], num_layers=options["layers"]))
    _sample("before training", untrained, tokenizer, args.prime, args.length)
    code = train_lm.run(targs)
    if dist.is_main() and code in (0, 130):
        model, tokenizer, _ = load_run(args.out)
        _sample("after training", model, tokenizer, args.prime, args.length)
        print(f"Run saved in {args.out}/ (model.safetensors, config.json, metrics.jsonl, loss.png).\n"
              f"More: rnnkit sample {args.out} --prime 'class ' --temperature 0.8", file=sys.stderr)
    return code
