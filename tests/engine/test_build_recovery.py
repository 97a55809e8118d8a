"""A build or load of the C++ engine that was killed never makes a later run hang (issue 19, defect 1).

Each test runs the engine's build in a child process with its own ``RNNKIT_BUILD_DIR`` and a timeout, so a hang
fails the test instead of stalling the suite.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnkit.engine import build, fused

BUILD = "from rnnkit.engine import fused; print(fused.build())"


def _compiler_present() -> bool:
    from torch.utils.cpp_extension import is_ninja_available
    return shutil.which(os.environ.get("CXX", "c++")) is not None and is_ninja_available()


needs_compiler = pytest.mark.skipif(not _compiler_present(), reason="no C++ compiler or ninja here")


def _env(build_dir: Path) -> dict:
    return {**os.environ, "RNNKIT_BUILD_DIR": str(build_dir)}


def _build(build_dir: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BUILD], env=_env(build_dir), capture_output=True, text=True,
                          timeout=timeout)


@needs_compiler
def test_a_lock_left_by_a_killed_load_is_not_waited_for(tmp_path):
    """torch's build lock left behind (a kill while loading) next to a built library: the next run loads at once."""
    built = Path(fused.build())
    name = built.stem
    target = tmp_path / name
    target.mkdir()
    shutil.copy(built, target / built.name)
    (target / "lock").write_text("")                       # what a killed torch.utils.cpp_extension.load leaves
    started = time.monotonic()
    result = _build(tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / built.name)
    assert time.monotonic() - started < 60


@needs_compiler
def test_a_build_killed_midway_is_rebuilt_by_the_next_run(tmp_path):
    """kill -9 of the build's process group during the first build, a half-written library and torch's stale lock
    left: the next run waits for the compilers ninja started in groups of their own (still running, writing the
    object files it would write), says it is compiling, rebuilds and loads; it neither hangs, nor loads the
    broken file, nor links an object file a left-over compiler is rewriting."""
    child = subprocess.Popen([sys.executable, "-c", BUILD], env=_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60

    def compiling() -> bool:                               # ninja and at least one compiler at work in the folder
        folders = [p for p in tmp_path.iterdir() if (p / "build.ninja").exists()]
        return bool(folders) and len(build._orphaned_compilers(str(folders[0]))) >= 2

    while not compiling() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    time.sleep(2)
    os.killpg(child.pid, signal.SIGKILL)                   # python and ninja; the compilers live on
    child.wait()
    (build_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (build_dir / f"{build_dir.name}.so").write_bytes(b"\x7fELF half written")
    (build_dir / "lock").write_text("")
    result = _build(tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr
    assert "compiler processes left by a killed build" in result.stderr
    assert "compiling the C++ engine once" in result.stderr
    assert result.stdout.strip() == str(build_dir / f"{build_dir.name}.so")
    assert not build._orphaned_compilers(str(build_dir))


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux's /proc")
def test_a_process_left_working_in_the_build_folder_is_waited_for_then_named(tmp_path, monkeypatch):
    """A process whose current folder is the build folder (a left-over compiler) is found, not this process nor
    its ancestors; waiting past the limit raises an error naming it and the folder."""
    worker = subprocess.Popen(["sleep", "60"], cwd=tmp_path)
    try:
        assert build._orphaned_compilers(str(tmp_path)) == [worker.pid]
        with pytest.raises(RuntimeError, match=f"processes {worker.pid} have worked in {tmp_path}"):
            build._wait_for_orphans(str(tmp_path), limit=0.2)
    finally:
        worker.kill()
        worker.wait()
    assert build._orphaned_compilers(str(tmp_path)) == []
    monkeypatch.chdir(tmp_path)                            # this process working there is not waited for
    build._wait_for_orphans(str(tmp_path), limit=0.0)


def test_a_failed_link_is_named_by_the_linkers_own_message():
    """torch's build error for a link that failed: the reason kept is ld's line (the file and what is wrong with
    it) with collect2's after it; a compile error keeps the compiler's first error line."""
    link = RuntimeError("Error building extension 'rnnkit_fused_x': [1/2] c++ -MMD -MF cells.o.d -c cells.cpp\n"
                        "[2/2] c++ engine.o cells.o -shared -o rnnkit_fused_x.so\nFAILED: rnnkit_fused_x.so\n"
                        "/usr/bin/ld: cells.o: file not recognized: file truncated\n"
                        "collect2: error: ld returned 1 exit status\nninja: build stopped: subcommand failed.\n")
    assert build._short(link) == ("RuntimeError: /usr/bin/ld: cells.o: file not recognized: file truncated "
                                  "(collect2: error: ld returned 1 exit status)")
    compile_error = RuntimeError("Error building extension 'rnnkit_fused_x': [1/2] c++ -c cells.cpp\nFAILED: cells.o\n"
                                 "cells.cpp:3:5: error: 'x' was not declared in this scope\n")
    assert build._short(compile_error) == "RuntimeError: cells.cpp:3:5: error: 'x' was not declared in this scope"


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX (Windows has torch's lock only)")
def test_a_live_builders_lock_is_waited_for_with_a_message_then_named(tmp_path, monkeypatch, capsys):
    """Another process holding the build lock: waited for with a message, taken once it is released; held past
    $RNNKIT_BUILD_WAIT, an error names the lock."""
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; h = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True); time.sleep(2); "
                               "fcntl.flock(h, fcntl.LOCK_UN); print('released', flush=True); time.sleep(30)",
                               str(tmp_path / "rnnkit-build.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("RNNKIT_BUILD_WAIT", "0.2")
        with pytest.raises(RuntimeError, match=f"held the build lock {tmp_path / 'rnnkit-build.lock'} for 0 s"):
            with build._build_lock(str(tmp_path)):
                pass
        monkeypatch.setenv("RNNKIT_BUILD_WAIT", "30")
        started = time.monotonic()
        with build._build_lock(str(tmp_path)):
            assert time.monotonic() - started > 1.0                   # the holder keeps it 2 s after 'held'
            assert holder.stdout.readline().strip() == "released"     # taken once the holder let go
    finally:
        holder.kill()
        holder.wait()
    assert "waiting for another process that is building the C++ engine" in capsys.readouterr().err
