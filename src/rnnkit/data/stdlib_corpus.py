"""The built-in demo corpus: the running interpreter's own standard library.

Every Python install ships a few MB of real, varied ``.py`` source, so a demo
can train a character model with no download and no data files. The selection
is deterministic for a given interpreter: ``.py`` files under
``sysconfig.get_paths()["stdlib"]`` in sorted relative-path order, skipping
test suites, IDLE, 2to3 and installed packages, keeping only files that decode
as UTF-8, concatenated until ``max_chars``; the last 10% is the validation text.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from .errors import DataError
from .splits import holdout_tail

__all__ = ["StdlibCorpus", "build_stdlib_corpus", "SKIPPED_DIRS"]

#: Directory names pruned from the walk (test suites, IDLE, 2to3, installed packages).
SKIPPED_DIRS = frozenset(
    {
        "test", "tests", "idle_test", "idlelib", "lib2to3", "turtledemo",
        "site-packages", "dist-packages", "__pycache__", "ensurepip",
    }
)  # fmt: skip


@dataclass(frozen=True)
class StdlibCorpus:
    """Train/valid text drawn from the standard library, and where it came from."""

    train: str
    valid: str
    description: str
    files: tuple[str, ...]  # relative paths used, in order (the last may be cut short)
    root: Path


def _python_files(root: Path) -> list[str]:
    """Relative POSIX paths of the ``.py`` files under ``root``, sorted, skipped dirs pruned."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        rel = Path(dirpath).relative_to(root)
        found += [(rel / f).as_posix() for f in filenames if f.endswith(".py")]
    return sorted(found)


def build_stdlib_corpus(
    max_chars: int = 2_000_000,
    valid_fraction: float = 0.1,
    root: str | PathLike[str] | None = None,
) -> StdlibCorpus:
    """Concatenate stdlib ``.py`` files (whole files, the last one cut) up to ``max_chars``."""
    root = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    if max_chars < 2:
        raise DataError(f"max_chars must be >= 2, got {max_chars}", root)
    if not root.is_dir():
        raise DataError("standard-library directory not found", root)
    parts: list[str] = []
    used: list[str] = []
    total = 0
    for rel in _python_files(root):
        try:
            text = (root / rel).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # unreadable or not UTF-8: not part of the corpus
        if not text.strip():
            continue
        if not text.endswith("\n"):
            text += "\n"
        text = text[: max_chars - total]
        parts.append(text)
        used.append(rel)
        total += len(text)
        if total >= max_chars:
            break
    if not parts:
        raise DataError("no UTF-8 .py files found to build the demo corpus from", root)
    train, valid = holdout_tail("".join(parts), valid_fraction, root)
    description = (
        f"Python {platform.python_version()} standard library ({sys.executable}, {root}): "
        f"{len(used)} .py files, {total:,} characters "
        f"({len(train):,} train / {len(valid):,} valid, last {valid_fraction:.0%} held out)"
    )
    return StdlibCorpus(train, valid, description, tuple(used), root)
