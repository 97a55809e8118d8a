"""A run folder has one owner at a time, and a command changes it only once it has validated its work.

:class:`RunFolder` is what a training command holds while it writes into ``--out``:

- **a lock**: ``.rnnkit.lock`` in the folder, held with ``fcntl.flock`` (the kernel releases it when its holder
  ends, however it ends: a lock left by a killed process is never waited for), with the holder's pid, host,
  start time and command written in it for the message a second command gets;
- **overwrite protection** (:meth:`RunFolder.check`): a folder holding files is refused unless the command
  continues the run in it (``--resume``) or was told to replace it (``--force``); a folder that is not an rnnkit
  run is never written into without ``--force``;
- **commit** (:meth:`RunFolder.commit`), called once everything the command was asked to do has been validated:
  clears temporary files a killed save left, rewrites a ``config.json`` an interrupted save left behind its weights,
  and with ``--force`` deletes the previous run's files (the run is replaced, not appended to);
- **release**: unlocks; a folder the command created and never committed is removed again (a command that
  failed its validation leaves nothing behind).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from .atomic import WriteError, is_leftover, make_folder, reason_of, remove_leftovers
from .checkpoint import CONFIG_FILE, MODEL_FILE, RESUME_FILE, CheckpointError, repair_config

__all__ = ["RunFolder", "RunFolderError", "LOCK_FILE", "RUN_FILES"]

LOCK_FILE = ".rnnkit.lock"
OPTIONS_FILE = "options.json"
METRICS_FILE = "metrics.jsonl"
# every file a training command writes into its run folder: what --force replaces
RUN_FILES = (MODEL_FILE, CONFIG_FILE, RESUME_FILE, OPTIONS_FILE, METRICS_FILE, "loss.png", "confusion.png")
CHECKPOINTS = (MODEL_FILE, RESUME_FILE)


class RunFolderError(CheckpointError):
    """A run folder this command may not use now: in use by another command, or not empty without --resume or
    --force."""


class RunFolder:
    """The run folder ``path``, owned by this process from :meth:`acquire` to :meth:`release` (a context manager
    does both). ``command`` is written into the lock for the message another command gets."""

    def __init__(self, path: str | os.PathLike, command: str = "") -> None:
        self.path = Path(path)
        self.command = command
        self.created = False          # this command made the folder (removed again if never committed)
        self.committed = False
        self._fd: int | None = None

    # ------------------------------------------------------------------ lock

    def acquire(self) -> "RunFolder":
        if self.path.exists() and not self.path.is_dir():
            raise WriteError(self.path, "a file of that name is in the way; --out names a run folder")
        self.created = not self.path.exists()
        make_folder(self.path)
        lock = self.path / LOCK_FILE
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                self._undo_create()
                raise WriteError(self.path, reason_of(e)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise WriteError(lock, reason_of(e)) from None
                raise RunFolderError(f"{self.path}: in use by another rnnkit command ({holder}); wait for it to "
                                     f"end (or stop it) before using this run folder") from None
            try:                       # the previous holder may have removed the file we locked: lock the new one
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = (f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                  + (f": {self.command}" if self.command else ""))
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder + "\n").encode("utf-8", "replace"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock (and remove the lock file); a folder this command created and never committed is removed."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path / LOCK_FILE)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        if not self.committed:
            self._undo_create()

    def _undo_create(self) -> None:
        if self.created:
            try:
                for p in self.path.iterdir():
                    if p.name == LOCK_FILE or is_leftover(p.name):
                        p.unlink()
                self.path.rmdir()                  # only if nothing else is in it
            except OSError:
                pass

    def __enter__(self) -> "RunFolder":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    # ------------------------------------------------------------------ what is in it

    def contents(self) -> list[str]:
        """The folder's entries, the lock and leftover temporary files aside."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK_FILE and not is_leftover(p.name))

    def is_run(self) -> bool:
        """Whether the folder holds an rnnkit run (options.json that is a JSON object, or a checkpoint)."""
        if any((self.path / f).is_file() for f in CHECKPOINTS):
            return True
        try:
            return isinstance(json.loads((self.path / OPTIONS_FILE).read_text(encoding="utf-8")), dict)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False

    def describe(self) -> str:
        """The run in a few words, for messages: task, step and best value of the best model, or what it holds."""
        try:
            config = json.loads((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
            metrics = config.get("metrics") or {}
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                              if isinstance(v, float) and k in ("loss", "accuracy", "bleu", "bleu4"))
            return (f"a trained {config.get('task')!r} run, best model from step {config.get('step')}"
                    + (f" ({shown})" if shown else ""))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, ValueError):
            pass
        if (self.path / RESUME_FILE).is_file():
            return "an rnnkit run with a resume state"
        return "an rnnkit run"

    def check(self, resume: bool, force: bool) -> str | None:
        """Refuse what the folder's content doesn't allow (:class:`RunFolderError`); returns a note to print
        (e.g. that an unfinished run without any checkpoint will be replaced) or None."""
        if resume and force:
            raise RunFolderError("give --resume (continue the run) or --force (replace it), not both")
        entries = self.contents()
        if resume:
            if not (self.path / OPTIONS_FILE).is_file():
                raise RunFolderError(f"{self.path / OPTIONS_FILE}: nothing to resume: no options.json (start the "
                                     f"run without --resume)")
            return None
        if not entries:
            return None
        if force:
            return f"--force: replacing {'the run' if self.is_run() else 'rnnkit files'} in {self.path}"
        if self.is_run():
            if not any((self.path / f).is_file() for f in CHECKPOINTS) and set(entries) <= set(RUN_FILES):
                return f"replacing the unfinished run in {self.path} (it has no checkpoint to lose)"
            raise RunFolderError(f"{self.path} already holds {self.describe()}; continue it with --resume, or "
                                 f"replace it with --force (its model, resume state and metrics are deleted)")
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise RunFolderError(f"{self.path} is not empty ({shown}) and is not an rnnkit run; choose another --out, "
                             f"or give --force to write the run into it (files named like a run's are replaced, "
                             f"others kept)")

    # ------------------------------------------------------------------ commit

    def commit(self, resume: bool = False, force: bool = False) -> list[str]:
        """Called once the command has validated its work, before it writes: clears the temporary files killed
        commands left, and then either continues the run (``resume``: a ``config.json`` an interrupted save left
        behind its weights is rewritten) or starts a new one (the previous run's files, which :meth:`check`
        allowed to replace, are deleted: a new run never appends to an old one's metrics). Returns the names of
        the leftovers removed."""
        removed = remove_leftovers(self.path)
        if resume:
            repair_config(self.path)
        elif force or self.is_run():
            for name in RUN_FILES:
                p = self.path / name
                if p.is_file() or p.is_symlink():
                    p.unlink()
        self.committed = True
        return removed


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "its pid is not recorded"
