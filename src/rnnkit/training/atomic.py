"""Write, then rename: a file on disk is always either the old one or the complete new one.

A temporary file is named ``.NAME.XXXXXXXX.tmp`` beside its target and created with the mode the umask allows
(``0666 & ~umask``, as ``open`` would), not ``mkstemp``'s 0600: a run folder shared with colleagues stays
readable. A kill can leave such a file behind; :func:`remove_leftovers` clears them (the command that next owns
the run folder calls it). A folder or file that can't be written is a :class:`WriteError` naming the path.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["WriteError", "atomic_path", "write_text", "write_json", "append_jsonl", "rewrite_jsonl",
           "remove_leftovers", "is_leftover", "check_writable", "make_folder", "pause_point"]

_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")      # ours, and tempfile.mkstemp's of earlier versions


class WriteError(RuntimeError):
    """A file or folder that can't be written (no such folder, a file in the way, no permission, read-only file
    system, disk full); the message names the path and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: cannot write here ({reason})")


def is_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_path` (left behind if its writer was killed)."""
    return bool(_TMP.match(name))


def reason_of(e: OSError) -> str:
    """An OS error's reason in words, for a :class:`WriteError`."""
    if isinstance(e, NotADirectoryError):
        return "a part of the path is a file, not a folder"
    if isinstance(e, IsADirectoryError):
        return "it is a folder"
    if isinstance(e, FileExistsError):
        return "a file is in the way of a folder"
    return e.strerror or str(e) or type(e).__name__


_passed: dict[str, int] = {}


def pause_point(name: str) -> None:
    """A hook for the crash tests: with ``RNNKIT_TEST_PAUSE=NAME`` (or ``NAME@N``: the N-th time) in the
    environment, the process says ``rnnkit-test: paused at NAME`` on stderr and sleeps, so that a test can kill it
    at exactly this point (e.g. ``rename:model.safetensors``, a file written but not yet renamed into place).
    A no-op otherwise."""
    wanted = os.environ.get("RNNKIT_TEST_PAUSE")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] == int(nth or 1):
        print(f"rnnkit-test: paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)


def make_folder(folder: str | os.PathLike) -> Path:
    """``mkdir -p folder``; anything in the way is a :class:`WriteError`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WriteError(folder, "a file of that name is in the way") from None
    except OSError as e:
        raise WriteError(folder, f"the folder can't be created: {reason_of(e)}") from None
    if not folder.is_dir():
        raise WriteError(folder, "a file of that name is in the way")
    return folder


def check_writable(path: str | os.PathLike, folder: bool = False) -> Path:
    """Make sure ``path`` (a file to write, or with ``folder=True`` a folder to write into) can be written,
    before any work is done: its folder is created if needed and a probe file is created and removed there.
    Returns the path; raises :class:`WriteError` naming it and why not."""
    path = Path(path)
    if not folder and path.is_dir():
        raise WriteError(path, "it is a folder; give a file name")
    try:
        where = make_folder(path if folder else path.parent)
    except WriteError as e:
        raise WriteError(path, e.reason if e.path == str(path) else f"{e.path}: {e.reason}") from None
    try:
        fd, probe = _create_tmp(where / ".rnnkit-write-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise WriteError(where if folder else path, reason_of(e)) from None
    return path


def file_mode() -> int:
    """The mode a new file gets from ``open``: 0666 less the process's umask."""
    try:                                         # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _create_tmp(path: Path) -> tuple[int, Path]:
    """A new empty file ``.NAME.XXXXXXXX.tmp`` beside ``path``, mode 0666 less the umask."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = _create_tmp(path)
    except OSError as e:
        raise WriteError(path, reason_of(e)) from None
    os.close(fd)
    try:
        yield tmp
        try:
            os.chmod(tmp, file_mode())             # the writer may have made its own file (safetensors: 0600)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            pause_point(f"rename:{path.name}")
            os.replace(tmp, path)
        except OSError as e:
            raise WriteError(path, reason_of(e)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """One JSON object per line; appending a whole line at once keeps earlier lines intact."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise WriteError(path, reason_of(e)) from None
    try:
        os.write(fd, line)                     # one write: the line is whole or absent, even after a kill
    finally:
        os.close(fd)


def rewrite_jsonl(path: str | os.PathLike, keep) -> int:
    """Rewrite the JSON-lines file ``path`` (atomically) with only the records ``keep(record)`` accepts; lines
    that are not whole JSON objects (a kill mid-write) are dropped too. Returns how many records were dropped;
    a missing file is left missing."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(record, dict) and keep(record):
            kept.append(line + "\n")
        else:
            dropped += 1
    if dropped:
        write_text(path, "".join(kept))
    return dropped


def remove_leftovers(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files (``.NAME.XXXXXXXX.tmp``) a killed write left in ``folder``; their names."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if is_leftover(p.name) and p.is_file():
            try:
                p.unlink()
                removed.append(p.name)
            except FileNotFoundError:
                pass
    return removed

