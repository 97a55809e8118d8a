"""Shared by the CLI tests: tiny corpora and running `rnnkit` in this process."""
from __future__ import annotations

import pytest
import torch

TRAIN_TEXT = "".join(f"line {i}: hello world, the {'cat' if i % 2 else 'dog'} sat {i % 7}\n" for i in range(30))
VALID_TEXT = "line 3: hello world, the dog sat 3\nline 8: the cat sat 1\n"
TINY = ["--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "4", "--bptt", "16",
        "--engine", "python", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def lm_test_env(monkeypatch):
    """One intra-op thread (tiny models gain nothing from more; the CPU is shared), and ``engine="auto"`` (e.g.
    the demo's untrained model) runs the Python loop: these tests are about language modelling and must not
    compile the fused C++ engine on first use (about a minute; tests/engine covers it)."""
    from rnnkit.engine import fused
    monkeypatch.setattr(fused, "unavailable_reason", lambda mode, x: "not used by the language-model tests")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(capsys, *argv):
    """``rnnkit ARGV`` in this process: (exit code, stdout, stderr)."""
    from rnnkit.cli.main import main
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
