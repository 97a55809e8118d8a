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

from rnnkit.engine import fused

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
    """kill -9 during the first build (compiler running), a half-written library and torch's stale lock left:
    the next run says it is compiling, rebuilds and loads; it neither hangs nor loads the broken file."""
    child = subprocess.Popen([sys.executable, "-c", BUILD], env=_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*/build.ninja")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    time.sleep(2)                                          # the compiler is at work
    os.killpg(child.pid, signal.SIGKILL)                   # the process and its compiler children
    child.wait()
    (build_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (build_dir / f"{build_dir.name}.so").write_bytes(b"\x7fELF half written")
    (build_dir / "lock").write_text("")
    result = _build(tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr
    assert "compiling the C++ engine once" in result.stderr
    assert result.stdout.strip() == str(build_dir / f"{build_dir.name}.so")
