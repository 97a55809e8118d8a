"""``rnnkit gradients`` and ``rnnkit experiment``: a cell the engine doesn't compute, or an engine this machine
can't run, is one line before any work (QA: tracebacks, and ``experiment adding --engine torch`` trained the RNN
and the LSTM for minutes, then crashed on the lecture's GRU and wrote nothing). Layers' messages name Python
arguments; the command line's name its options (:func:`rnnkit.cli.errors.in_cli_terms`)."""
from __future__ import annotations

import pytest
import torch

from lm_cli_helpers import lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.cli.errors import in_cli_terms

TORCH_GRU = ("--cell gru: --engine torch runs torch.nn's kernels, which don't compute the lecture's GRU (Cho et al. "
             "2014, reset before the recurrent matmul; --cell gru-torch is PyTorch's); use another engine")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("argv, problem", [
    (["experiment", "adding", "--engine", "torch", "--steps", "2", "--delays", "10"], TORCH_GRU),
    (["gradients", "--engine", "torch", "--steps", "10"], TORCH_GRU),
    (["experiment", "adding", "--cells", "mingru", "--engine", "torch", "--steps", "2", "--delays", "10"],
     "--cell mingru: --engine torch chooses among the time loops of the sequential cells; mingru runs a parallel "
     "scan (use --engine auto)"),
    (["gradients", "--cell", "lstm", "--engine", "cuda-graph", "--steps", "10"],
     "--cell lstm: --engine cuda-graph replays CUDA graphs and needs a GPU tensor, not cpu; use 'compiled' or "
     "'auto'"),
])
def test_refused_before_any_work(argv, problem, tmp_path, capsys, no_cuda):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, *argv, "--out", out / ("g.png" if argv[0] == "gradients" else "results"))
    assert (code, stdout, err) == (2, "", f"rnnkit: error: command line: {problem}\n")
    assert not out.exists()


def test_a_cell_the_engine_computes_runs(tmp_path, capsys):
    code, stdout, _ = run_cli(capsys, "experiment", "adding", "--cells", "gru-torch", "--engine", "torch", "--steps",
                              "2", "--delays", "3", "--eval-size", "4", "--batch-size", "2", "--quiet")
    assert code == 0 and "gru-torch T=3: 2 steps" in stdout and "| 3 | " in stdout


@pytest.mark.parametrize("layer_message, cli_message", [
    ("engine='compiled' cannot run here: no compiler. Use engine='auto' or 'python'.",
     "--engine compiled cannot run here: no compiler. Use --engine auto or python."),
    ("use reset_after=True for PyTorch's", "--cell gru-torch is PyTorch's"),
    ("nothing to translate", "nothing to translate"),
])
def test_layer_messages_in_the_command_lines_terms(layer_message, cli_message):
    assert in_cli_terms(layer_message) == cli_message
