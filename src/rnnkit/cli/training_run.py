"""What every ``rnnkit train TASK`` does once its data, model and task are built: own the run folder, validate the
resume, then write the options, announce the run, train, say how training stopped and how to continue.

The order is what keeps a run folder safe (see :mod:`rnnkit.training.run_folder`): the folder is locked and
checked before anything else (:func:`run_training`: a second command into the same ``--out`` is refused at
once, naming the holder; so is a folder with files in it, without ``--resume`` or ``--force``, and on ``--resume``
another task's run); the options are checked against the device (:func:`check_engine_device`); the data, the
model and, on ``--resume``, the saved state are then loaded and checked; only then does the command write
(``options.json``, the replaced run's files deleted, leftovers of a killed save cleared) and train.
"""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ..engine.resolve import missing
from ..training import CheckpointError, TrainConfig, Trainer, TrainingError
from ..training import distributed as dist
from ..training.atomic import write_json
from ..training.checkpoint import CONFIG_FILE, MODEL_FILE, load_resume
from ..training.run_folder import OPTIONS_FILE, RunFolder, RunFolderError
from ..training.trainer import resolve_device
from .errors import OptionError
from .options import describe_preset, typed


def check_torch_engine(engine: str, regularisers: dict, preset: str | None = None) -> None:
    """``--engine torch`` runs torch.nn's kernel, which has none of the layer's regularisers but weight drop: refuse
    the others before training (a ValueError, which the commands report as an option error), naming them.
    ``regularisers``: option name -> value, unset ones falsy; ``preset``: a preset that uses this engine, named
    in the message as where it may have come from."""
    if engine != "torch":
        return
    unsupported = sorted(missing("torch", frozenset(k for k, v in regularisers.items() if v)))
    if unsupported:
        whose = f"; the {preset} preset's" if preset else ""
        raise ValueError(f"--engine torch (torch.nn's kernel{whose}) has no "
                         f"{', '.join('--' + r.replace('_', '-') for r in unsupported)}: add --engine auto")


def run_vocabulary(args: argparse.Namespace) -> dict:
    """On ``--resume``, the vocabulary the run was trained with (its resume state's record; empty for a new run,
    a resume file of an older version, or one that can't be read, which the trainer then reports)."""
    if not args.resume:
        return {}
    try:
        return load_resume(args.out, mmap=True).get("vocabulary") or {}     # (the weights mapped, not read)
    except CheckpointError:
        return {}


def check_engine_device(o: dict) -> None:
    """An engine the run's device can't run, refused before any work (every train command calls this on its
    resolved options; the engine would fail at the first step, after options.json is written): ``cuda-graph``
    replays CUDA graphs, a GPU's; ``compiled`` is the CPU's C++ loop. The device is the one
    :func:`~rnnkit.training.trainer.resolve_device` picks: ``auto`` is the GPU where CUDA is available."""
    engine, device = o.get("engine"), o.get("device", "auto")
    if engine not in ("cuda-graph", "compiled"):
        return
    on_gpu = device != "cpu" and torch.cuda.is_available()
    if engine == "cuda-graph" and not on_gpu:
        why = "the run is on the CPU (--device cpu)" if device == "cpu" else "this machine has none"
        raise OptionError(f"--engine cuda-graph replays CUDA graphs and needs a GPU (--device cuda); {why}: use "
                          f"--engine compiled or auto")
    if engine == "compiled" and on_gpu:
        raise OptionError(f"--engine compiled is the CPU's C++ loop and the run is on the GPU (--device {device}): "
                          f"use --engine cuda-graph, torch or auto, or --device cpu")


def saved_task(run: Path) -> str | None:
    """The task of the run in ``run`` as its files name it: ``options.json``'s ``task`` (which
    :func:`train_and_report` writes), else ``config.json``'s (once a model is saved); None where neither does."""
    for name in (OPTIONS_FILE, CONFIG_FILE):
        try:
            saved = json.loads((run / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and isinstance(saved.get("task"), str) and saved["task"]:
            return saved["task"]
    return None


def check_resumed_task(args: argparse.Namespace) -> None:
    """``--resume`` continues a run with the command that trained it: another task's run is refused, naming that
    command (its options would otherwise be read as this command's, and fail on one they lack)."""
    task, command = saved_task(Path(args.out)), getattr(args, "task", None)
    if task and command and task != command:
        raise RunFolderError(f"{args.out} was trained with rnnkit train {task}, not {command}; continue it with "
                             f"{dist.resume_command(task, args.out)}")


def count_parameters(model: nn.Module) -> int:
    """The model's parameter count, for the line that announces a run."""
    return sum(p.numel() for p in model.parameters())


def training_device(cfg: TrainConfig) -> torch.device:
    """The device ``--device`` names, with the process group started when the command runs under torchrun."""
    device = resolve_device(cfg.device)
    dist.init(device)
    return device


def _command_line() -> str:
    return "rnnkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "rnnkit"


@contextmanager
def owned_run_folder(args: argparse.Namespace) -> Iterator[RunFolder | None]:
    """Own ``args.out`` for the block: locked, and checked against ``--resume``/``--force`` (refusals raise
    :class:`~rnnkit.training.run_folder.RunFolderError`). Re-entrant (the folder is kept in ``args.run_folder``);
    None on the ranks of a torchrun job other than 0."""
    folder = getattr(args, "run_folder", None)
    if folder is not None and folder.held:
        yield folder
        return
    if not dist.main_process():
        yield None
        return
    folder = RunFolder(args.out, command=_command_line()).acquire()
    try:
        args.run_folder_note = folder.check(resume=args.resume, force=bool(getattr(args, "force", False)))
        args.run_folder = folder
        yield folder
    finally:
        folder.release()
        args.run_folder = None


def run_training(args: argparse.Namespace) -> int:
    """``rnnkit train TASK``: the task's command, with its run folder owned from the start (and on ``--resume``
    checked to hold a run of this task)."""
    with owned_run_folder(args):
        if args.resume:
            check_resumed_task(args)
        return args.run_command(args)


def _typed_changes(args: argparse.Namespace, o: dict) -> str:
    """The options typed with --resume that differ from the run's saved ones, for a resume that doesn't fit."""
    try:
        saved = json.loads((Path(args.out) / OPTIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    changed = [f"--{k.replace('_', '-')} {o[k]} (the run has {saved[k]})" for k in sorted(saved)
               if k in o and typed(args, k) and saved[k] != o[k]]
    return f"; typed with --resume: {', '.join(changed)}" if changed else ""


def train_and_report(args: argparse.Namespace, o: dict, model: nn.Module, task, cfg: TrainConfig, command: str,
                     intro: str, outcome: Callable[[Trainer], str], trainer_class: Callable | None = None) -> int:
    """Train ``model`` on ``task`` into ``args.out``; ``intro`` is printed before training (after the preset's name,
    if one applies), ``outcome(trainer)`` completes the "stopped after N steps" line. Returns the exit code
    (128 + the signal's number after SIGINT or SIGTERM: 130, 143)."""
    with owned_run_folder(args) as folder:
        trainer = (trainer_class or Trainer)(model, task, cfg, args.out, quiet=args.quiet)   # or NT-ASGD's
        main = dist.is_main()
        if main:
            print(f"rnnkit: {describe_preset(args, o)}{intro}", file=sys.stderr)
        if args.resume:
            try:
                trainer.resume()                           # reads only: the folder is unchanged if it fails
            except TrainingError as e:
                raise TrainingError(f"{e}{_typed_changes(args, o)}") from None
            if main and getattr(trainer, "lost_best", None):
                print(f"rnnkit: warning: {trainer.lost_best}; the next evaluation saves a new one", file=sys.stderr)
        if main and folder is not None:
            note = getattr(args, "run_folder_note", None)
            if note:
                print(f"rnnkit: {note}", file=sys.stderr)
            folder.commit(resume=args.resume, force=bool(getattr(args, "force", False)))
            write_json(Path(args.out) / OPTIONS_FILE, {**o, "task": command})    # the task: for --resume
        start = trainer.step
        reason = trainer.fit()
        if main:
            try:
                unvalidated = getattr(trainer, "last_metrics", None) == {}    # (an ensemble reports its own)
                tail = f"; no validation yet, so no model saved yet in {args.out}" if unvalidated else outcome(trainer)
            except CheckpointError as e:
                tail = (f"; no model saved yet in {args.out}{getattr(trainer, 'unfinished_note', '')}"
                        if not (Path(args.out) / MODEL_FILE).is_file() else f"; no usable model: {e}")
            steps = f"{trainer.step:,} step{'' if trainer.step == 1 else 's'}"
            print(f"rnnkit: stopped ({reason}) after {steps}{tail}", file=sys.stderr)
            if args.resume and trainer.step == start and reason in ("max_steps", "time budget", "early stopping"):
                print(f"rnnkit: the run had already stopped there ({reason}); nothing was trained (raise "
                      f"--max-steps, --minutes or --patience to train further)", file=sys.stderr)
            if reason == "interrupted":
                name = trainer.signals.name or "SIGINT"
                print(f"rnnkit: {name}: training state saved at step {trainer.step:,} in {args.out}; continue "
                      f"with: {dist.resume_command(command, args.out)}", file=sys.stderr)
    received = trainer.signals.received
    trainer.release()
    del trainer, model
    dist.shutdown()
    if reason == "interrupted":
        return 128 + (received or signal.SIGINT)
    return 0
