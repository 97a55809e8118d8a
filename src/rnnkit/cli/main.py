"""The ``rnnkit`` command: one sub-command per module in this package."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from .. import __version__
from ..data import DataError
from ..tasks.ensemble import MEMBERS_DIR
from ..training import CheckpointError, TrainingError
from ..training.checkpoint import MODEL_FILE, RESUME_FILE
from ..training import distributed as dist
from ..training.atomic import WriteError
from .errors import OptionError, out_of_memory
from .ranges import Parser, document_ranges
from . import bench, build, demo, evaluate, predict, sample, train_classify, train_lm
from . import train_seq2seq, translate
from . import experiment, gradients, report
from . import caption, train_caption
from . import export

EXPECTED_ERRORS = (OptionError, DataError, CheckpointError, TrainingError, WriteError)


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent networks from the lecture, on PyTorch.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__} (torch {torch.__version__})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser("train", help="train a model (rnnkit train lm --help)")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for module in (train_lm, train_classify, train_seq2seq):
        module.add_parser(tasks)
    train_caption.add_parser(tasks)
    caption.add_parser(sub)
    for module in (sample, predict, translate, evaluate, demo, build, bench):
        module.add_parser(sub)
    for module in (gradients, experiment, report):
        module.add_parser(sub)
    export.add_parser(sub)
    document_ranges(parser)          # every range-checked option's --help says its range
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with texts allowed after options too: argparse gives a command's trailing positional
    list (``rnnkit predict RUN --explain "text"``) only the words before the first option, so the words left
    over go to the list the command names in ``more_texts``."""
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    tail = getattr(args, "more_texts", None)
    if extra and tail and not any(e.startswith("-") for e in extra):
        getattr(args, tail).extend(extra)
    elif extra:                    # the usage line of the command that was given, not rnnkit's
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub-)parser of the command ``args`` ran: ``rnnkit build``, ``rnnkit train lm``, ..."""
    for dest in ("command", "task"):
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, dest, None)
        if not subparsers or name not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[name]
    return parser


def _error(message: str) -> int:
    """One line on standard error (under torchrun from rank 0 only: every rank meets the same error), code 2."""
    if dist.main_process():
        print(f"rnnkit: error: {message}", file=sys.stderr)
    return 2


def _interrupted(args: argparse.Namespace | None) -> str:
    """The line for Ctrl-C outside a training step (the trainer's own line covers a step): for a train command,
    whether its run folder holds saved work and the command that continues it."""
    out = getattr(args, "out", None)
    if args is None or args.command != "train" or not out:
        return "rnnkit: interrupted"
    saved = [name for name in (MEMBERS_DIR, MODEL_FILE, RESUME_FILE) if (Path(out) / name).exists()]
    if not saved:
        return f"rnnkit: interrupted; nothing was saved in {out}"
    return (f"rnnkit: interrupted; what was saved in {out} is kept ({', '.join(saved)}); continue with: "
            f"{dist.resume_command(args.task, out)}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rnnkit's own warnings (their text starts "rnnkit: ") as one line on standard error, without Python's file
    and source line (QA: the compiled engine's fallback showed torch's module.py and a line of its code); the
    others as Python shows them."""
    text = str(message)
    if not text.startswith("rnnkit: "):
        return _python_show_warning(message, category, filename, lineno, file, line)
    if dist.main_process():
        print(f"rnnkit: warning: {text.removeprefix('rnnkit: ')}", file=sys.stderr if file is None else file)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    previous, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _run(argv)
    finally:
        warnings.showwarning = previous


def _run(argv: list[str] | None) -> int:
    args = None
    try:
        args = parse(argv)
        if args.command == "train":               # owns its run folder from the start (lock, overwrite checks)
            from .training_run import run_training
            return run_training(args)
        return args.run_command(args)
    except EXPECTED_ERRORS as e:
        return _error(str(e))
    except (RuntimeError, MemoryError) as e:      # torch.OutOfMemoryError is a RuntimeError
        message = out_of_memory(e)
        if message is None:
            raise
        return _error(message)
    except KeyboardInterrupt:
        if dist.main_process():
            print(_interrupted(args), file=sys.stderr)
        return 130
    except BrokenPipeError:       # `rnnkit sample ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
