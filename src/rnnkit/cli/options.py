"""Command-line options with defaults that presets can change and ``--help`` always shows.

Every option is declared once with its default. The parser itself defaults to ``None`` so that, after parsing,
an option the user typed wins over the preset, and the preset over the built-in default.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Option:
    flag: str
    default: Any
    help: str
    type: Callable | None = None
    choices: tuple | None = None
    flag_only: bool = False       # a switch: present means True

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def add_options(parser: argparse.ArgumentParser, title: str, options: list[Option]) -> None:
    group = parser.add_argument_group(title)
    for o in options:
        text = f"{o.help} (default: {o.default})".replace("%", "%%")   # argparse formats help with %
        if o.flag_only:
            group.add_argument(o.flag, action="store_const", const=True, default=None, help=text)
        else:
            group.add_argument(o.flag, type=o.type, choices=o.choices, default=None, help=text,
                               metavar=None if o.choices else o.dest.upper())


def resolve(args: argparse.Namespace, options: list[Option], *layers: dict) -> dict:
    """Each option's value: typed on the command line, else from the last layer that has it, else its default."""
    values = {}
    for o in options:
        typed = getattr(args, o.dest, None)
        if typed is not None:
            values[o.dest] = typed
            continue
        values[o.dest] = o.default
        for layer in layers:
            if o.dest in layer:
                values[o.dest] = layer[o.dest]
    return values


def optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "0") else int(text)


def optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


MODEL = [
    Option("--cell", "lstm", "recurrent cell: lstm, gru (the lecture's, Cho et al.), gru-torch (PyTorch/cuDNN's), "
           "rnn (tanh), rnn-relu", choices=("lstm", "gru", "gru-torch", "rnn", "rnn-relu")),
    Option("--embed-size", 256, "embedding size", type=int),
    Option("--hidden-size", 256, "hidden units per layer", type=int),
    Option("--layers", 2, "stacked recurrent layers", type=int),
    Option("--dropout", 0.0, "dropout on embeddings, between layers and on outputs", type=float),
    Option("--embed-dropout", None, "dropout on the embeddings only (overrides --dropout there)", type=optional_float),
    Option("--tie-weights", False, "share the embedding and decoder matrices (needs embed = hidden size)",
           flag_only=True),
    Option("--init-range", None, "initialise every parameter uniform in (-r, r) (Zaremba: 0.1); none: PyTorch's",
           type=optional_float),
    Option("--forget-bias", None, "LSTM forget-gate bias at initialisation (e.g. 1.0)", type=optional_float),
    Option("--engine", "auto", "recurrence engine", choices=("auto", "fused", "python", "reference")),
]

TRAINER = [
    Option("--optimizer", "adam", "optimizer", choices=("sgd", "adam", "adamw")),
    Option("--lr", 2e-3, "learning rate", type=float),
    Option("--weight-decay", 0.0, "weight decay", type=float),
    Option("--momentum", 0.0, "SGD momentum", type=float),
    Option("--lr-decay", 1.0, "multiply the learning rate by this each epoch after --decay-after", type=float),
    Option("--decay-after", 0, "epochs at the full learning rate before decay starts", type=int),
    Option("--epochs", 10, "epochs", type=int),
    Option("--max-steps", None, "stop after this many steps", type=optional_int),
    Option("--minutes", None, "time budget in minutes (resumes included)", type=optional_float),
    Option("--clip", 5.0, "clip the global gradient norm to this (0: off)", type=float),
    Option("--eval-every", 0, "evaluate every N steps (0: every epoch)", type=int),
    Option("--patience", None, "stop after N evaluations without improvement", type=optional_int),
    Option("--seed", 0, "random seed", type=int),
    Option("--device", "auto", "device", choices=("auto", "cpu", "cuda")),
    Option("--bf16", False, "bf16 autocast on CUDA", flag_only=True),
    Option("--threads", None, "CPU threads for PyTorch; none: PyTorch's choice (1 is often fastest for small "
           "models on a busy machine)", type=optional_int),
    Option("--log-every", 50, "steps between training-loss records in metrics.jsonl", type=int),
]

TRAIN_KEYS = {"optimizer", "lr", "weight_decay", "momentum", "lr_decay", "decay_after", "epochs", "max_steps",
              "minutes", "clip", "eval_every", "patience", "seed", "device", "bf16", "log_every"}


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads (None: as they are), then restore the caller's setting (the CLI
    may run in-process, e.g. in tests)."""
    import torch
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def add_run_arguments(parser: argparse.ArgumentParser, presets: dict[str, dict]) -> None:
    """The arguments every ``rnnkit train TASK`` has: the run folder, presets, resume, quiet."""
    parser.add_argument("--out", required=True, help="run folder to write (model, config, metrics, plots)")
    parser.add_argument("--preset", choices=sorted(presets),
                        help="named settings; options you type override them (default: none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out exactly where it stopped (default: off)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")


def resolved_options(args: argparse.Namespace, options: list[Option], presets: dict[str, dict]) -> dict:
    """Typed options > the run's saved ``options.json`` (on ``--resume``) > the preset > defaults."""
    import json
    from pathlib import Path

    from ..data import DataError

    saved = {}
    options_file = Path(args.out) / "options.json"
    if args.resume:
        if not options_file.is_file():
            raise DataError("nothing to resume: no options.json (start the run without --resume)", options_file)
        saved = json.loads(options_file.read_text(encoding="utf-8"))
    preset = presets.get(saved.get("preset") or args.preset or "", {})
    values = resolve(args, options, preset, saved)
    values["preset"] = args.preset or saved.get("preset")
    return values
