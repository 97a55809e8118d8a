"""The code passes ruff's pyflakes and pycodestyle checks (unused imports and names, undefined names, long lines),
with the rules and exceptions of ``[tool.ruff]`` in pyproject.toml, so that none creeps back in."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing_in_src_tests_and_benchmarks():
    pytest.importorskip("ruff", reason="ruff is not installed (pip install -e '.[dev]'; make test does)")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
