"""Run folders: ``model.safetensors`` + ``config.json`` (the best model), ``resume.pt`` (where training stood).

Loading never executes code from a file: weights come from safetensors, the resume state through
``torch.load(weights_only=True)``, the configuration from JSON. Every problem names the file.

One save is one unit. Each save of the best model has a fresh ``save_id``; the weights file carries it and the
whole configuration in its safetensors metadata, and ``config.json`` carries it too. The weights are renamed
into place first, ``config.json`` second: the weights file is the commit point. A kill between the two renames
leaves a ``config.json`` of the previous save beside the new weights; :func:`read_config` sees the ids differ
and reads the configuration stored with the weights instead (the next training command rewrites ``config.json``
from it: :func:`repair_config`). Weights and a configuration from different saves are never used together.
Non-finite weights are never written (:func:`check_finite`).
"""
from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.errors import DataError
from ..data.tensor_files import first_line, read_tensors
from .atomic import atomic_path, pause_point, write_json

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RESUME_FILE = "resume.pt"
FORMAT = "rnnkit-run/1"
SAVE_ID_KEY = "rnnkit_save_id"          # safetensors metadata: the save this file belongs to
CONFIG_KEY = "rnnkit_config"            # safetensors metadata: config.json's content of the same save


class CheckpointError(ValueError):
    """A run folder or checkpoint that can't be used; the message names the file and the problem."""


def new_save_id() -> str:
    return uuid.uuid4().hex


def save_run(run_dir: str | Path, model: nn.Module, config: dict) -> str:
    """Write the model's weights and its configuration as one save (see the module's docstring); returns the save's
    id. Non-finite weights are refused (:class:`ValueError` naming the first bad tensor) and nothing is written."""
    run_dir = Path(run_dir)
    bad = first_non_finite(model.state_dict())
    if bad is not None:
        raise ValueError(f"the weights are not finite ({bad}); not saved")
    save_id = new_save_id()
    full = {"format": FORMAT, **config, "save_id": save_id}
    tensors = {names[0]: t.detach().to("cpu", copy=True).contiguous() for names, t in _tie_groups(model)}
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", SAVE_ID_KEY: save_id,
                                               CONFIG_KEY: json.dumps(full, sort_keys=True)})
    pause_point("save:between-weights-and-config")
    write_json(run_dir / CONFIG_FILE, full)
    return save_id


def first_non_finite(tensors: dict) -> str | None:
    """The name of the first floating-point tensor (nested dicts and lists searched too) holding a NaN or an
    infinity, else None."""
    stack = [("", tensors)]
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{prefix}{k}.", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{prefix}{i}.", v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return prefix.rstrip(".")
        elif isinstance(value, float) and not math.isfinite(value):
            return prefix.rstrip(".")
    return None


def _tie_groups(model: nn.Module) -> list[tuple[list[str], torch.Tensor]]:
    """The state dict's names grouped by tensor object: tied weights (the LM's embedding and decoder) are one
    group, written once. By object, not storage: on a GPU cuDNN's ``flatten_parameters`` leaves every weight of a
    layer a view into one buffer, which safetensors' own ``save_model`` refuses to write."""
    groups: dict[int, tuple[list[str], torch.Tensor]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), ([], t))[0].append(name)
    return list(groups.values())


def weights_metadata(run_dir: str | Path) -> dict[str, str]:
    """The safetensors metadata of the run's weights ({} when the file is missing or unreadable)."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        return {}
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:      # a damaged file: load_weights says so with the details
        return {}


def _config_from_weights(meta: dict[str, str]) -> dict | None:
    try:
        config = json.loads(meta[CONFIG_KEY])
    except (KeyError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def read_config(run_dir: str | Path, task: str | None = None) -> dict:
    """The run's configuration; ``task`` (e.g. ``"lm"``) must match the run's own. When ``config.json`` is missing
    or belongs to another save than the weights (a save was interrupted), the configuration saved with the
    weights is used (:func:`locate_config` says which)."""
    return locate_config(run_dir, task)[0]


def locate_config(run_dir: str | Path, task: str | None = None) -> tuple[dict, Path]:
    """:func:`read_config`'s configuration and the file it came from: ``config.json``, or ``model.safetensors``
    whose metadata holds it (so that messages about it name the file that holds it)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder" if not run_dir.exists()
                              else f"{run_dir}: not a folder; a run is a folder written by `rnnkit train`")
    meta = weights_metadata(run_dir)
    from_weights = _config_from_weights(meta)
    if not path.is_file():
        if from_weights is None:
            raise CheckpointError(f"{path}: missing; {run_dir} is not a finished rnnkit run (train one first)")
        config, path = from_weights, run_dir / MODEL_FILE
    else:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path}: not valid JSON ({e}); the file is corrupt") from None
        saved_id = config.get("save_id") if isinstance(config, dict) else None
        weights_id = meta.get(SAVE_ID_KEY)
        if saved_id is not None and weights_id is not None and saved_id != weights_id:
            if from_weights is None:
                raise CheckpointError(f"{path}: belongs to another save than {run_dir / MODEL_FILE} (save "
                                      f"{saved_id[:8]} vs {weights_id[:8]}); the run folder is inconsistent")
            config, path = from_weights, run_dir / MODEL_FILE
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnkit run configuration (expected format {FORMAT!r})")
    if task is not None and config.get("task") != task:
        raise CheckpointError(f"{run_dir}: this is a {config.get('task')!r} run, but a {task!r} run is needed")
    return config, path


def repair_config(run_dir: str | Path) -> bool:
    """Rewrite ``config.json`` from the configuration stored with the weights when an interrupted save left it
    missing or from an older save (only the command that owns the run folder calls this). True if it did."""
    run_dir = Path(run_dir)
    meta = weights_metadata(run_dir)
    from_weights = _config_from_weights(meta)
    if from_weights is None:
        return False
    path = run_dir / CONFIG_FILE
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False                           # damaged by hand: leave it for the user to see
    if isinstance(current, dict) and current.get("save_id") in (None, meta.get(SAVE_ID_KEY)):
        return False
    write_json(path, from_weights)
    return True


def describe_mismatch(saved: dict, expected: dict, limit: int = 6) -> str:
    """What differs between a saved state dict and the model's: shape mismatches, missing and unexpected names
    (a few of each, with counts); empty when they fit."""
    def listed(names: list[str]) -> str:
        names = sorted(names)
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more

    shapes = [f"{n} saved {tuple(saved[n].shape)} vs model {tuple(expected[n].shape)}"
              for n in expected if n in saved and hasattr(saved[n], "shape") and hasattr(expected[n], "shape")
              and tuple(saved[n].shape) != tuple(expected[n].shape)]
    missing = [n for n in expected if n not in saved]
    unexpected = [n for n in saved if n not in expected]
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es): " + "; ".join(shapes[:limit])
                     + (f"; and {len(shapes) - limit} more" if len(shapes) > limit else ""))
    if missing:
        parts.append(f"{len(missing)} missing: {listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {listed(unexpected)}")
    return "; ".join(parts)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, every one finite; a CheckpointError naming the file if it can't be."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        saved = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot be read as this model's weights ({first_line(e)})") from None
    bad = first_non_finite(saved)
    if bad is not None:                                       # training never saves these: a damaged file
        raise CheckpointError(f"{path}: the weights hold NaN or infinite values ({bad}); the file is damaged")
    return saved


def lost_best_model(run_dir: str | Path, best_step: int | None) -> str | None:
    """Why the best model a resume state knows of (from ``best_step``) is gone: its file missing, unreadable or
    holding NaN; None where it is sound, or where there was none."""
    path = Path(run_dir) / MODEL_FILE
    if best_step is None and not path.is_file():
        return None
    try:
        _read_weights(path)
    except CheckpointError as e:
        return f"{e}: the best model{'' if best_step is None else f' (step {best_step})'} is lost"
    return None


def load_weights(run_dir: str | Path, model: nn.Module) -> None:
    """Fill ``model`` from the run's safetensors file; any mismatch is an error naming the file."""
    path = Path(run_dir) / MODEL_FILE
    saved = _read_weights(path)
    upgrade = getattr(model, "upgrade_state_dict", None)      # a model whose parameter names changed
    if upgrade is not None:
        saved = upgrade(saved)
    state, known = {}, {}
    for names, t in _tie_groups(model):
        found = [n for n in names if n in saved]
        known.update({n: t for n in names})
        if found:
            state.update({n: saved[found[0]] for n in names})
    expected = model.state_dict()
    problem = describe_mismatch({**state, **{n: v for n, v in saved.items() if n not in known}}, expected)
    if problem:
        raise CheckpointError(f"{path}: the weights do not fit the model the run's configuration describes ({problem})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: cannot be read as this model's weights ({first_line(e)})") from None


def save_resume(run_dir: str | Path, state: dict) -> None:
    """The full training state (tensors and plain values only), for ``--resume``. Non-finite weights or optimizer
    state are refused (:class:`ValueError`) and nothing is written."""
    bad = first_non_finite({"model": state.get("model", {}), "optimizer": state.get("optimizer", {})})
    if bad is not None:
        raise ValueError(f"the training state is not finite ({bad}); not saved")
    with atomic_path(Path(run_dir) / RESUME_FILE) as tmp:
        torch.save(state, tmp)


def load_resume(run_dir: str | Path, mmap: bool = False) -> dict:
    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; nothing to resume in {run_dir}")
    try:
        state = read_tensors(path, "an rnnkit resume file", mmap=mmap)
    except DataError as e:
        raise CheckpointError(f"{e}; start the run again without --resume") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "step" not in state:
        raise CheckpointError(f"{path}: not an rnnkit resume file (no model state and step); start the run again "
                              f"without --resume")
    return state
