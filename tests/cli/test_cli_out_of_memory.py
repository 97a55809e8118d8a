"""Sizes within the integer cap that no machine holds (``--hidden-size 2147483647``): the allocator's failure is one
line saying what ran out and which options make it smaller, not a torch traceback; other errors pass through."""
from __future__ import annotations

import re

import pytest

from rnnkit.cli.errors import out_of_memory

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)

ADVICE = ("the sizes given need more memory than is free; make the model or the batch smaller (e.g. --hidden-size, "
          "--embed-size, --layers, --batch-size, --beam)")


@pytest.mark.parametrize("error, size", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                  "tried to allocate 8796093018112 bytes. Error code 12 (Cannot allocate memory)"), " (it tried to "
     "allocate 8.8 TB at once)"),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.19 GiB total capacity)"),
     " (it tried to allocate 20.00 GiB at once)"),
    (MemoryError(), ""),
])
def test_allocation_failures_become_one_line(error, size):
    assert out_of_memory(error) == f"out of memory{size}: {ADVICE}"


def test_other_runtime_errors_are_not_taken_for_memory():
    assert out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x5 and 4x4)")) is None


def test_a_model_too_large_for_any_machine_is_one_line(tmp_path, capsys):
    corpus = tmp_path / "train.txt"
    corpus.write_text("hello world\n" * 20)
    args = [a if a != "16" else "2147483647" for a in TINY]             # --hidden-size 2147483647
    code, _, err = run_cli(capsys, "train", "lm", "--train", corpus, "--out", tmp_path / "run", *args)
    assert code == 2 and "Traceback" not in err
    assert re.fullmatch(r"rnnkit: error: out of memory \(it tried to allocate [\d.]+ [GT]B at once\): "
                        + re.escape(ADVICE), err.strip().splitlines()[-1])
    assert not (tmp_path / "run" / "model.safetensors").exists()
