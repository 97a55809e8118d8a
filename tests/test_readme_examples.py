"""The README's Python examples run as written, each on its own (QA: two used names they never defined). The one
that reads files an earlier shell command writes (the ONNX deployment) is left to tests/export."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
NEEDS_FILES = ("open(", "onnxruntime")


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_example_runs_on_its_own(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    if any(marker in code for marker in NEEDS_FILES):
        pytest.skip("reads the files of the shell commands before it (tests/export runs that example's steps)")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme_example"})
