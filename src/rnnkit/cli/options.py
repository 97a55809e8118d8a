"""Command-line options with defaults that presets can change and ``--help`` always shows.

Every option is declared once with its default. The parser itself defaults to ``None`` so that, after parsing,
an option the user typed wins over the preset, and the preset over the built-in default. ``--dataset NAME``
brings the preset of the same name when there is one and no ``--preset`` was typed (a named data set with its
recipe: ``--dataset dates`` trains at character level, as it must).

Every numeric option has a documented range (its type is a checker from :mod:`rnnkit.cli.ranges`), checked as
the command line is parsed; :func:`validate_options` applies the same checks to a preset's values and to the
options a run saved in ``options.json``, before anything is written.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ..cells.spec import CELL_NAMES
from ..engine.resolve import ENGINES
from .errors import OptionError, in_cli_terms
from .ranges import (Checked, dropout_rate, finite_float, non_negative_float, non_negative_int, number, optional,
                     out_path, positive_float, positive_int, seed_int, thread_count)

ENGINE_HELP = ("recurrence engine: auto (the fastest that serves), compiled (the C++ loop, CPU), cuda-graph (GPU), "
               "python (Python loop, hand-written BPTT), autograd (plain autograd), torch (torch.nn's kernel)")


@dataclass(frozen=True)
class Option:
    flag: str
    default: Any
    help: str
    type: Callable | None = None
    choices: tuple | None = None
    flag_only: bool = False       # a switch: --flag means True, --no-flag False (to undo a preset's)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


class _Typed(argparse.Action):
    """Stores the value and notes the option as typed: a typed "none" (or 0 where 0 means none) parses to None,
    which must still win over a preset's or a saved run's value (:func:`typed`)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, "_typed", getattr(namespace, "_typed", set()) | {self.dest})


def typed(args: argparse.Namespace, dest: str) -> bool:
    """Whether the option ``dest`` was given on the command line (its value may be None: "none")."""
    return getattr(args, dest, None) is not None or dest in getattr(args, "_typed", set())


def add_options(parser: argparse.ArgumentParser, title: str, options: list[Option]) -> None:
    group = parser.add_argument_group(title)
    for o in options:
        text = o.help if "(default:" in o.help else f"{o.help} (default: {o.default})"
        text = text.replace("%", "%%")                                  # argparse formats help with %
        if o.flag_only:
            group.add_argument(o.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(o.flag, action=_Typed, type=o.type, choices=o.choices, default=None, help=text,
                               metavar=None if o.choices else o.dest.upper())


def resolve(args: argparse.Namespace, options: list[Option], *layers: dict) -> dict:
    """Each option's value: typed on the command line, else from the last layer that has it, else its default."""
    values = {}
    for o in options:
        if typed(args, o.dest):
            values[o.dest] = getattr(args, o.dest)
            continue
        values[o.dest] = o.default
        for layer in layers:
            if o.dest in layer:
                values[o.dest] = layer[o.dest]
    return values


def validate_options(values: dict, options: list[Option], where: str = "options") -> dict:
    """``values`` (a preset's, or a run's saved ``options.json``) checked like typed options: each known option's
    value against its range (:mod:`rnnkit.cli.ranges`), its choices, or its kind (a switch: true/false; a file
    name: text). Returns a copy with values normalised (e.g. 0 → None where 0 means "none"; keys that are not
    among ``options`` are kept as they are); raises :class:`OptionError` naming ``where``, the option, the value
    and the range: ``runs/x/options.json: --lr must be a finite number > 0, got 'fast'``."""
    if not isinstance(values, dict):
        raise OptionError(f"expected a JSON object of option values, got {type(values).__name__}", where)
    by_dest = {o.dest: o for o in options}
    checked = dict(values)
    for key, value in values.items():
        if key in by_dest:
            checked[key] = _check_value(by_dest[key], value, where)
    return checked


def _check_value(o: Option, value: Any, where: str) -> Any:
    shown = repr(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else value
    if value is None and (o.default is None or getattr(o.type, "allows_none", False)):
        return None
    if o.flag_only:
        if isinstance(value, bool):
            return value
        raise OptionError(f"{o.flag} must be true or false, got {shown}", where)
    if o.choices is not None:
        if isinstance(value, str) and value in o.choices:
            return value
        raise OptionError(f"{o.flag} must be one of {', '.join(map(str, o.choices))}, got {shown}", where)
    if isinstance(o.type, Checked):
        try:
            return o.type.check(value)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise OptionError(f"{o.flag} {e}", where) from None
    if o.type is None and isinstance(value, str):
        return value
    raise OptionError(f"{o.flag} must be {'text' if o.type is None else 'given'}, got {shown}", where)


MODEL = [
    Option("--cell", "lstm", "recurrent cell: lstm, gru (the lecture's, Cho et al.), gru-torch (PyTorch/cuDNN's), "
           "rnn (tanh), rnn-relu, mingru, minlstm (Feng et al.'s minimal cells, trained with a parallel scan)",
           choices=CELL_NAMES),
    Option("--embed-size", 256, "embedding size", type=positive_int),
    Option("--hidden-size", 256, "hidden units per layer", type=positive_int),
    Option("--layers", 2, "stacked recurrent layers", type=positive_int),
    Option("--dropout", 0.0, "dropout on embeddings, between layers and on outputs", type=dropout_rate),
    Option("--embed-dropout", None, "dropout on the embeddings only (overrides --dropout there)",
           type=optional(dropout_rate, "--dropout's")),
    Option("--tie-weights", False, "share the embedding and decoder matrices (needs embed = hidden size)",
           flag_only=True),
    Option("--init-range", None, "initialise every parameter uniform in (-r, r) (Zaremba: 0.1); none: PyTorch's",
           type=optional(positive_float, "PyTorch's")),
    Option("--forget-bias", None, "LSTM forget-gate bias at initialisation (e.g. 1.0)",
           type=optional(finite_float, "PyTorch's")),
    Option("--engine", "auto", ENGINE_HELP, choices=ENGINES),
]

TRAINER = [
    Option("--optimizer", "adam", "optimizer", choices=("sgd", "adam", "adamw")),
    Option("--lr", 2e-3, "learning rate", type=positive_float),
    Option("--weight-decay", 0.0, "weight decay", type=non_negative_float),
    Option("--momentum", 0.0, "SGD momentum", type=number(0, 1, high_open=True)),
    Option("--lr-decay", 1.0, "multiply the learning rate by this each epoch after --decay-after",
           type=number(0, 1, low_open=True)),
    Option("--decay-after", 0, "epochs at the full learning rate before decay starts", type=non_negative_int),
    Option("--decay-last", 0.0, "the last fraction of the budget (--minutes, else the steps) over which the "
           "learning rate falls linearly to 0", type=number(0, 1)),
    Option("--epochs", 10, "epochs", type=positive_int),
    Option("--max-steps", None, "stop after this many steps", type=optional(positive_int, "no limit", zero=True)),
    Option("--minutes", None, "time budget in minutes (resumes included)", type=optional(positive_float, "no limit")),
    Option("--clip", 5.0, "clip the global gradient norm to this (0: off)",
           type=non_negative_float.with_note("0 turns clipping off")),
    Option("--eval-every", 0, "evaluate every N steps (0: every epoch)",
           type=non_negative_int.with_note("0: every epoch")),
    Option("--patience", None, "stop after N evaluations without improvement",
           type=optional(positive_int, "no early stopping", zero=True)),
    Option("--seed", 0, "random seed", type=seed_int),
    Option("--device", "auto", "device", choices=("auto", "cpu", "cuda")),
    Option("--bf16", False, "bf16 autocast on CUDA", flag_only=True),
    Option("--threads", None, "CPU threads for PyTorch; none: PyTorch's choice (1 is often fastest for small "
           "models on a busy machine)", type=optional(thread_count, "PyTorch's choice", zero=True)),
    Option("--log-every", 50, "steps between training-loss records in metrics.jsonl", type=positive_int),
]

TRAIN_KEYS = {"optimizer", "lr", "weight_decay", "momentum", "lr_decay", "decay_after", "decay_last", "epochs",
              "max_steps", "minutes", "clip", "eval_every", "patience", "seed", "device", "bf16", "log_every"}


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
    parser.add_argument("--out", required=True, type=out_path,
                        help="run folder to write (model, config, metrics, plots)")
    parser.add_argument("--preset", choices=sorted(presets),
                        help="named settings; options you type override them (default: none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out exactly where it stopped (default: off)")
    parser.add_argument("--force", action="store_true",
                        help="replace the run (or write into the non-empty folder) in --out; without it a folder "
                             "with files in it is only used with --resume (default: off)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")


def preset_name(args: argparse.Namespace, presets: dict[str, dict]) -> str | None:
    """The preset to apply: ``--preset``, else the one named like a typed ``--dataset`` (if any)."""
    dataset = getattr(args, "dataset", None)
    return args.preset or (dataset if dataset in presets else None)


DATA_FILES = ("train", "src", "tgt", "images", "captions")      # the options that give a command its own data


def resolved_options(args: argparse.Namespace, options: list[Option], presets: dict[str, dict]) -> dict:
    """Typed options > the run's saved ``options.json`` (on ``--resume``) > the preset > defaults."""
    import json
    from pathlib import Path

    saved = {}
    options_file = Path(args.out) / "options.json"
    if args.resume:
        if not options_file.is_file():
            raise OptionError("nothing to resume: no options.json (start the run without --resume)", options_file)
        try:
            saved = json.loads(options_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise OptionError(f"not valid JSON ({e}); the run's options can't be read back", options_file) from None
        except OSError as e:
            raise OptionError(f"can't be read ({e.strerror or e})", options_file) from None
        saved = validate_options(saved, options, str(options_file))
    implied = preset_name(args, presets)
    preset = saved.get("preset") or implied or ""
    if not isinstance(preset, str):
        raise OptionError(f"preset must be a preset's name, got {preset!r}", options_file)
    layer = validate_options(presets.get(preset, {}), options, f"preset {preset}")
    values = resolve(args, options, layer, saved)
    if layer.get("dataset") and not typed(args, "dataset") and "dataset" not in saved \
            and any(typed(args, k) for k in DATA_FILES):
        values["dataset"] = None          # your own files replace the preset's data set (typed options win)
    values["preset"] = args.preset or saved.get("preset") or implied
    return values


def describe_preset(args: argparse.Namespace, o: dict) -> str:
    """How a run's first line names its preset: ``preset dates (named by --dataset dates); `` or nothing."""
    if not o.get("preset"):
        return ""
    implied = not args.preset and getattr(args, "dataset", None) == o["preset"]
    return f"preset {o['preset']}" + (f" (named by --dataset {o['preset']})" if implied else "") + "; "


def check_cells_run(cells: list[str], engine: str, num_layers: int = 1) -> None:
    """Each cell's layer built with ``engine`` and run on one CPU step, before any work: a cell the engine doesn't
    compute (the lecture's GRU on torch.nn's kernel, a minimal cell with a time-loop engine) or an engine this
    machine can't run (cuda-graph without a GPU) is one line, not a traceback after the other cells trained."""
    from ..layers.recurrent import make_layer
    for cell in cells:
        try:
            make_layer(cell, 1, 1, num_layers=num_layers, engine=engine)(torch.zeros(1, 1, 1))
        except (ValueError, RuntimeError) as e:
            raise OptionError(f"--cell {cell}: {in_cli_terms(str(e))}") from None
