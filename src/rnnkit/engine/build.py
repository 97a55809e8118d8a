"""Building and loading the compiled engine's C++ extension (``csrc/``).

The extension is built on first use with :func:`torch.utils.cpp_extension.load` into ``$RNNKIT_BUILD_DIR`` (or
torch's extension cache), about a minute once, then imported straight from the cache in milliseconds;
``rnnkit build`` (:func:`build`) builds ahead. Importing rnnkit compiles nothing. A build that was killed never
blocks the next one (see :func:`_build_lock`), and the next one waits for the compilers it left running (see
:func:`_wait_for_orphans`).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = ("engine.cpp", "cells.cpp", "cells_rnn_lstm.cpp", "cells_gru.cpp", "stepper.cpp", "scan.cpp",
            "masks.cpp")
BUILD_FAILED = "the C++ extension could not be built"
_lock = threading.Lock()
state: dict = {"module": None, "error": None}


def _flags() -> list[str]:
    """-O3, OpenMP for the row loops, no FP traps/errno (as torch builds; lets the gate loops vectorize), and
    AVX2/FMA, or AVX-512 with 512-bit loops, only where torch detected them on this CPU (the cache key includes
    the flags): the gate loops are the compiled loop's own arithmetic, so they use the widest vectors the CPU has
    (the measured gain is in BENCHMARKS.md, from ``benchmarks/engine_ab.py --variant-flags``)."""
    flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    capability = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
        if capability == "AVX512":                 # ATen's AVX512 means F, BW, VL and DQ are all there
            flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mprefer-vector-width=512"]
    return flags


def _name(flags: list[str], csrc: Path = _CSRC) -> str:
    """A module name that changes with the sources (``csrc``: this package's, or another checkout's for the A/B
    benchmarks), flags, compiler and torch: a stale build is never loaded."""
    h = hashlib.sha256(" ".join([torch.__version__, os.environ.get("CXX", "c++"), *flags]).encode())
    for f in sorted(csrc.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return f"rnnkit_fused_{h.hexdigest()[:12]}"


def _build_dir(name: str) -> str:
    root = os.environ.get("RNNKIT_BUILD_DIR")
    if root:
        path = os.path.join(os.path.expanduser(root), name)
        os.makedirs(path, exist_ok=True)
        return path
    from torch.utils.cpp_extension import _get_build_directory
    return _get_build_directory(name, verbose=False)


def _short(err: BaseException) -> str:
    """The first compiler error line of a failed build, or the exception's first line. A failed link is named by
    the linker's own first line (which file, what is wrong with it), not only collect2's "ld returned 1"."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    line = errors[1] if len(errors) > 1 and errors[0].startswith("Error building") else (errors or [text])[0]
    linker = [ln for ln in lines if re.match(r"(\S*/)?ld(\.\w+)?: ", ln)]
    if "ld returned" in line and linker:
        line = f"{linker[0]} ({line})"
    return f"{type(err).__name__}: {line[:300]}"


def _library() -> tuple[str, str, str, list[str]]:
    """(module name, build folder, library path, flags) of this machine's build."""
    flags = _flags()
    name = _name(flags)
    build_dir = _build_dir(name)
    return name, build_dir, os.path.join(build_dir, f"{name}.so"), flags


def _compile(verbose: bool):
    """The extension module: imported straight from the cache when built, else built under :func:`_build_lock`."""
    from torch.utils import cpp_extension
    name, build_dir, library, flags = _library()
    if os.path.exists(library):
        try:
            return _import_built(name, library)
        except ImportError:                        # a half-written library from a killed build: build again
            pass
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler found ({cxx!r} is not on PATH; install g++ or set CXX)")
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (pip install ninja)")
    with _build_lock(build_dir):
        _wait_for_orphans(build_dir)                  # a killed build's compilers, or its ninja, still at work
        if os.path.exists(library):
            try:
                return _import_built(name, library)   # another process (or a killed one's ninja) built it
            except ImportError:
                os.remove(library)
        stale = os.path.join(build_dir, "lock")       # torch's own lock, left by a build that was killed:
        if os.path.exists(stale):                     # nobody else builds while we hold ours, so it is stale
            os.remove(stale)
        print(f"rnnkit: compiling the C++ engine once (about a minute) into {build_dir} ...",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        module = cpp_extension.load(name, [str(_CSRC / s) for s in _SOURCES], extra_cflags=flags,
                                    extra_ldflags=["-fopenmp"], build_directory=build_dir, verbose=verbose)
        print(f"rnnkit: C++ engine built in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        return module


def _import_built(name: str, library: str):
    """Import an already-built extension from its file (no compiler, no ninja, no torch build lock)."""
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ImportError(f"{library}: {err}") from err
    return module


@contextlib.contextmanager
def _build_lock(build_dir: str):
    """One builder per build folder across processes: an ``flock`` the kernel releases when its holder dies, so
    a killed build never blocks the next one. A live builder is waited for, with a message, up to
    ``$RNNKIT_BUILD_WAIT`` seconds (default 600)."""
    try:
        import fcntl
    except ImportError:                            # no flock (Windows): torch's own lock only
        yield
        return
    path = os.path.join(build_dir, "rnnkit-build.lock")
    with open(path, "a+") as handle:
        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        _wait_until(locked, lambda: f"rnnkit: waiting for another process that is building the C++ engine "
                                    f"(lock {path})",
                    lambda limit: f"another process has held the build lock {path} for {limit:.0f} s; "
                                  f"if no rnnkit build is running, delete that folder")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _orphaned_compilers(build_dir: str) -> list[int]:
    """Processes working in ``build_dir`` (their current folder) other than this one and its ancestors: while we
    hold the build lock, the compilers of a build that was killed. ninja starts each compiler in a process group
    of its own, so a kill of the build's group leaves them running, writing the same object files the next build
    writes. Linux only (``/proc``); elsewhere none are seen."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return []
    mine, pid = set(), os.getpid()
    while pid > 1 and pid not in mine:                 # this process and its ancestors (a shell cd'd in there)
        mine.add(pid)
        try:
            pid = int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    target, found = os.path.realpath(build_dir), []
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) not in mine:
            try:
                if os.path.realpath(os.readlink(entry / "cwd")) == target:
                    found.append(int(entry.name))
            except OSError:                            # gone, or another user's
                pass
    return sorted(found)


def _wait_for_orphans(build_dir: str, limit: float | None = None) -> None:
    """Wait, with a message, until no compiler of a killed build still writes into ``build_dir`` (they finish
    within the minute a build takes), so that the new build never links an object file half rewritten by one;
    ``RuntimeError`` naming them after ``limit`` seconds (:func:`_wait_until`)."""
    pids: list[int] = []

    def gone() -> bool:
        pids[:] = _orphaned_compilers(build_dir)
        return not pids

    _wait_until(gone, lambda: f"rnnkit: waiting for {len(pids)} compiler processes left by a killed build in "
                              f"{build_dir} (pids {' '.join(map(str, pids))})",
                lambda limit: f"processes {' '.join(map(str, pids))} have worked in {build_dir} for {limit:.0f} s; "
                              f"they are left by a killed build: end them, then build again", limit)


def _wait_until(done: Callable[[], bool], waiting: Callable[[], str], gave_up: Callable[[float], str],
                limit: float | None = None) -> None:
    """Poll ``done`` every half second until it is true, printing ``waiting()`` at once and every 30 s; after
    ``limit`` seconds (default ``$RNNKIT_BUILD_WAIT``, else 600) ``RuntimeError(gave_up(limit))``. The build's two
    waits share it: for the lock's live holder and for a killed build's compilers."""
    limit = float(os.environ.get("RNNKIT_BUILD_WAIT", "600")) if limit is None else limit
    started, next_message = time.monotonic(), 0.0
    while not done():
        waited = time.monotonic() - started
        if waited >= next_message:
            next_message += 30
            print(waiting(), file=sys.stderr, flush=True)
        if waited > limit:
            raise RuntimeError(gave_up(limit))
        time.sleep(0.5)


def extension(verbose: bool = False):
    """The loaded extension, building it on first use; ``None`` (and the error remembered) if it can't be built."""
    if state["module"] is None and state["error"] is None:
        with _lock:
            if state["module"] is None and state["error"] is None:
                try:
                    state["module"] = _compile(verbose)
                except Exception as err:           # no compiler, no ninja, a compile or load error
                    state["error"] = _short(err)
    return state["module"]


def loaded():
    """The extension if it is loaded or already built (then imported from the cache, in milliseconds), else
    ``None``: never compiles. For helpers that have a slower PyTorch twin (:mod:`.masks`)."""
    if state["module"] is None and state["error"] is None:
        with _lock:
            if state["module"] is None and state["error"] is None:
                try:
                    name, _, library, _ = _library()
                    if os.path.exists(library):
                        state["module"] = _import_built(name, library)
                except Exception:                  # unreadable: the next extension() call rebuilds or reports
                    pass
    return state["module"]


def build(verbose: bool = False) -> str:
    """Build (or load from the cache) the extension now and return its path; ``RuntimeError`` saying why if not."""
    module = extension(verbose)
    if module is None:
        raise RuntimeError(f"rnnkit: the compiled engine is unavailable: {BUILD_FAILED}: {state['error']}")
    return module.__file__


