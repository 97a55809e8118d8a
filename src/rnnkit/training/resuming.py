"""What ``--resume`` must keep of a run: its vocabulary (its tokenizers' symbols, its classes) and its number of
processes (each rank's share of the data and its position in it depend on it).

Hugging Face's BPE trainer breaks ties between merges of equal count in no fixed order, so a BPE vocabulary learnt
again from the same text may number its pieces otherwise (and, with ties at the size limit, keep others): on
``--resume`` the commands keep the run's own (:func:`resumed`); the trainer's check is the safety net.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from . import distributed as dist

T = TypeVar("T")

VOCABULARY_KEYS = ("tokenizer", "encoder", "labels", "src_tokenizer", "tgt_tokenizer")    # in a task's run_config


def _symbols(part) -> list | None:
    """The list of symbols (or classes) in a saved tokenizer, encoder or label list."""
    if isinstance(part, list):
        return part
    if isinstance(part, dict):
        return part.get("vocab") if "vocab" in part else _symbols(part.get("tokenizer"))
    return None


def vocabulary_difference(saved: dict, now: dict) -> str:
    """The first way two runs' vocabularies differ, in words: ``tokenizer: symbol 3 is 'A' now, 'a' then``."""
    for key in VOCABULARY_KEYS:
        if saved.get(key) == now.get(key):
            continue
        then, new = _symbols(saved.get(key)), _symbols(now.get(key))
        if then is None or new is None or then == new:
            return f"{key}: the same symbols, other settings"
        if len(then) != len(new):
            return f"{key}: {len(new):,} symbols now, {len(then):,} then"
        i = next(i for i, (a, b) in enumerate(zip(then, new)) if a != b)
        return f"{key}: symbol {i} is {new[i]!r} now, {then[i]!r} then"
    return "other keys"


def resumed(saved: dict, key: str, build: Callable[[], T], from_dict: Callable[[Any], T]) -> T:
    """On ``--resume`` the run's own ``saved[key]`` (its vocabulary is kept like its weights: the data is encoded
    with it, so a symbol it lacks is an error naming the file), else ``build()``: learnt from the data now. (A BPE
    vocabulary learnt again from the same text may hold other pieces under other ids: module docstring.)"""
    return from_dict(saved[key]) if key in saved else build()


def vocabulary_of(task) -> dict:
    """A task's vocabulary: the parts of its ``run_config`` that say what its symbols and classes are."""
    config = task.run_config()
    return {k: config[k] for k in VOCABULARY_KEYS if k in config}


def check_resumable(state: dict, path: Path, task) -> str | None:
    """Why the resume state ``state`` (read from ``path``) can't continue with ``task`` in this process group, or
    None. (Resume files of older versions record neither part: nothing to compare.)"""
    saved_world, world = state.get("world_size", dist.world_size()), dist.world_size()
    if saved_world != world:
        command = dist.resume_command(task.run_config().get("task"), path.parent, saved_world)
        return (f"{path}: saved by {saved_world} process(es), resumed by {world}; resume with as many: {command} "
                f"(or start a new run)")
    saved, now = state.get("vocabulary"), vocabulary_of(task)
    if saved is not None and saved != now:
        return (f"{path}: the training data gives another vocabulary than the run was trained with "
                f"({vocabulary_difference(saved, now)}); resume with the run's own training files (its "
                f"options.json names them)")
    return None
