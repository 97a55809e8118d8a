"""Loading a trained run folder, the same way for every task: read ``config.json``, build the model and what it
needs (tokenizers, labels) from it, check them, load the weights, move the model to the device in eval mode.

Each task module exposes ``load_run(run_dir, device)`` on top of :func:`load_task_run`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..training.checkpoint import CheckpointError, load_weights, locate_config

Build = Callable[[dict, Path], tuple[nn.Module, tuple[Any, ...]]]


def check_vocabulary(where: Path, what: str, tokenizer_size: int, model_size: int) -> None:
    """The tokenizer saved with a run and the model's vocabulary size agree (else the file was edited or damaged;
    checked before the model is built, so a damaged size never allocates)."""
    if tokenizer_size != model_size:
        raise CheckpointError(f"{where}: the {what} tokenizer has {tokenizer_size:,} symbols but the model "
                              f"{model_size:,}; the file is damaged")


def load_task_run(run_dir: str | Path, task: str, what: str, build: Build, device: torch.device | str = "cpu",
                  wrong_task: Callable[[Any], str] | None = None) -> tuple[nn.Module, tuple[Any, ...], dict]:
    """``(model in eval mode on device, parts, config)`` of a ``task`` run.

    ``build(config, config_path)`` returns the model and its parts; a ``KeyError``, ``TypeError`` or
    ``ValueError`` there means the configuration is incomplete or invalid (``what`` names the kind of model in
    the message), a :class:`CheckpointError` passes through. ``wrong_task(found)`` gives the message for
    another task's run (default: :func:`~rnnkit.training.checkpoint.read_config`'s).
    """
    config, where = locate_config(run_dir, task=None if wrong_task else task)   # where: the file that holds it
    if wrong_task is not None and config.get("task") != task:
        raise CheckpointError(wrong_task(config.get("task")))
    if not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{where}: \"model\" must be the {what} settings (a JSON object), got "
                              f"{json.dumps(config.get('model'))}; the file is damaged")
    try:
        model, parts = build(config, where)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{where}: incomplete or invalid {what} configuration ({type(e).__name__}: {e})") \
            from None
    load_weights(run_dir, model)
    return model.to(device).eval(), parts, config
