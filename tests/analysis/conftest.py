"""Fixtures for the analysis tests: one CPU thread, and one tiny trained language-model run shared by them."""
from __future__ import annotations

import random

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """These tests step tiny networks one time step at a time; a second thread only adds waiting on a
    shared CPU (measured here: 30x slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def code_like_text(lines: int = 120, seed: int = 0) -> str:
    """Lines with quotes, brackets and varying length: the features the report correlates units with."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta"]
    out = []
    for _ in range(lines):
        w = rng.choice(words)
        n = rng.randint(0, 99)
        out.append(rng.choice([f'print("{w}", f({n}))', f"x = [{n}, ({n} + 1)]  # {w}",
                               f"say('{w} {n}')", f"{w} = {{'k': ({n},)}}"]))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory):
    """A 2-layer character LSTM trained for a few steps by ``rnnkit train lm``: (run folder, text file)."""
    from rnnkit.cli.main import main
    folder = tmp_path_factory.mktemp("analysis_lm")
    text = folder / "train.txt"
    text.write_text(code_like_text(), encoding="utf-8")
    run = folder / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["train", "lm", "--train", str(text), "--out", str(run), "--cell", "lstm", "--layers", "2",
                     "--hidden-size", "16", "--embed-size", "8", "--batch-size", "8", "--bptt", "16",
                     "--max-steps", "20", "--eval-every", "10", "--log-every", "5", "--engine", "python",
                     "--device", "cpu", "--quiet"])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    return run, text
