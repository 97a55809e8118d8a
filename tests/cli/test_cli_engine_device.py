"""An engine the run's device can't run is one line before any work, for every train command (QA of the seq2seq
commands, fix 1): ``--engine cuda-graph`` without a GPU crashed at the first step with a traceback, leaving a run
folder with only options.json. One check (:func:`rnnkit.cli.training_run.check_engine_device`) on the options as
resolved: typed, a preset's or a resumed run's. CUDA is stubbed, so these run the same on any machine."""
from __future__ import annotations

import json

import pytest
import torch

from lm_cli_helpers import lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.cli.training_run import check_engine_device

TASKS = ("lm", "classify", "seq2seq", "caption")
NO_GPU = ("rnnkit: error: command line: --engine cuda-graph replays CUDA graphs and needs a GPU (--device cuda); "
          "this machine has none: use --engine compiled or auto\n")
ON_CPU = ("rnnkit: error: command line: --engine cuda-graph replays CUDA graphs and needs a GPU (--device cuda); "
          "the run is on the CPU (--device cpu): use --engine compiled or auto\n")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("device, message", [("auto", NO_GPU), ("cuda", NO_GPU), ("cpu", ON_CPU)])
@pytest.mark.parametrize("task", TASKS)
def test_cuda_graph_without_a_gpu_is_refused_before_any_work(task, device, message, tmp_path, capsys, no_cuda):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "train", task, "--out", out, "--engine", "cuda-graph", "--device", device,
                                "--max-steps", "1")
    assert (code, stdout, err) == (2, "", message)
    assert not out.exists()                                       # no run folder, no options.json


def test_cuda_graph_refused_with_real_training_data(corpus_dir, tmp_path, capsys, no_cuda):
    """The issue's command: data given, the refusal still comes before it is read or anything is written."""
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "train", "lm", "--train", corpus_dir / "train.txt", "--out", out,
                                "--max-steps", "1", "--hidden-size", "8", "--engine", "cuda-graph", "--quiet")
    assert (code, stdout, err) == (2, "", NO_GPU)
    assert not out.exists()


def test_a_resumed_runs_saved_engine_is_checked_too(char_run, capsys, no_cuda):
    options = json.loads((char_run / "options.json").read_text())
    (char_run / "options.json").write_text(json.dumps({**options, "engine": "cuda-graph", "device": "cpu"}))
    before = sorted(p.name for p in char_run.iterdir())
    code, stdout, err = run_cli(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "6")
    assert (code, stdout, err) == (2, "", ON_CPU)
    assert sorted(p.name for p in char_run.iterdir()) == before


def test_compiled_on_a_gpu_is_refused(tmp_path, capsys, monkeypatch):
    """The other way round: the CPU's C++ loop on a GPU run (refused before CUDA is touched, so a stub serves)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "train", "seq2seq", "--out", out, "--engine", "compiled")
    assert (code, stdout, err) == (2, "", "rnnkit: error: command line: --engine compiled is the CPU's C++ loop and "
                                          "the run is on the GPU (--device auto): use --engine cuda-graph, torch or "
                                          "auto, or --device cpu\n")
    assert not out.exists()


@pytest.mark.parametrize("engine, device, gpu", [("compiled", "cpu", False), ("compiled", "auto", False),
                                               ("compiled", "cpu", True), ("cuda-graph", "auto", True),
                                               ("cuda-graph", "cuda", True), ("python", "cpu", False),
                                               ("auto", "auto", False), ("torch", "auto", True)])
def test_engines_the_device_runs_pass(engine, device, gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    check_engine_device({"engine": engine, "device": device})           # no refusal
