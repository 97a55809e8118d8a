"""Run folders: ``model.safetensors`` + ``config.json`` (the best model), ``resume.pt`` (where training stood).

Loading never executes code from a file: weights come from safetensors, the resume state through
``torch.load(weights_only=True)``, the configuration from JSON. Every problem names the file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_path, write_json

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RESUME_FILE = "resume.pt"
FORMAT = "rnnkit-run/1"


class CheckpointError(ValueError):
    """A run folder or checkpoint that can't be used; the message names the file and the problem."""


def save_run(run_dir: str | Path, model: nn.Module, config: dict) -> None:
    """Write the model's weights and its configuration (weights first: config.json marks a complete run)."""
    run_dir = Path(run_dir)
    tensors = {names[0]: t.detach().to("cpu", copy=True).contiguous() for names, t in _tie_groups(model)}
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_json(run_dir / CONFIG_FILE, {"format": FORMAT, **config})


def _tie_groups(model: nn.Module) -> list[tuple[list[str], torch.Tensor]]:
    """The state dict's names grouped by tensor object: tied weights (the LM's embedding and decoder) are one
    group, written once. By object, not storage: on a GPU cuDNN's ``flatten_parameters`` leaves every weight of a
    layer a view into one buffer, which safetensors' own ``save_model`` refuses to write."""
    groups: dict[int, tuple[list[str], torch.Tensor]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), ([], t))[0].append(name)
    return list(groups.values())


def read_config(run_dir: str | Path, task: str | None = None) -> dict:
    """The run's configuration; ``task`` (e.g. ``"lm"``) must match the run's own."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {run_dir} is not a finished rnnkit run (train one first)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); the file is corrupt") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnkit run configuration (expected format {FORMAT!r})")
    if task is not None and config.get("task") != task:
        raise CheckpointError(f"{run_dir}: this is a {config.get('task')!r} run, but a {task!r} run is needed")
    return config


def load_weights(run_dir: str | Path, model: nn.Module) -> None:
    """Fill ``model`` from the run's safetensors file; any mismatch is an error naming the file."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        saved = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot be read as this model's weights ({_first_line(e)})") from None
    upgrade = getattr(model, "upgrade_state_dict", None)      # a model whose parameter names changed
    if upgrade is not None:
        saved = upgrade(saved)
    state, missing, known = {}, [], set()
    for names, _ in _tie_groups(model):
        known.update(names)
        found = [n for n in names if n in saved]
        if found:
            state.update({n: saved[found[0]] for n in names})
        else:
            missing += names
    unexpected = [n for n in saved if n not in known]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the configuration (missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: cannot be read as this model's weights ({_first_line(e)})") from None


def save_resume(run_dir: str | Path, state: dict) -> None:
    """The full training state (tensors and plain values only), for ``--resume``."""
    with atomic_path(Path(run_dir) / RESUME_FILE) as tmp:
        torch.save(state, tmp)


def load_resume(run_dir: str | Path) -> dict:
    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; nothing to resume in {run_dir}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:   # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path}: corrupt or not an rnnkit resume file (it holds something other than "
                              f"tensors and plain values); start the run again without --resume") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
