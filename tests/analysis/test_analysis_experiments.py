"""Long-range memory experiments: the data generators against hand examples, training, ``rnnkit experiment``."""
from __future__ import annotations

import json
import math

import pytest
import torch

from rnnkit.analysis.experiments import results_table, train_memory
from rnnkit.analysis.memory_tasks import (AddingTask, CopyTask, adding_batch, adding_example, copy_batch, copy_example,
                                          make_task)
from rnnkit.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_adding_hand_example():
    x, y = adding_example([0.3, 0.9, 0.1, 0.6, 0.2, 0.8], marks=[1, 4])
    assert x.shape == (6, 2)
    assert x[:, 0].tolist() == pytest.approx([0.3, 0.9, 0.1, 0.6, 0.2, 0.8])
    assert x[:, 1].tolist() == [0, 1, 0, 0, 1, 0]
    assert y.item() == pytest.approx(1.1)
    with pytest.raises(ValueError, match="two distinct"):
        adding_example([0.1, 0.2, 0.3], marks=[1, 1])


def test_adding_batch_structure_and_baseline():
    g = torch.Generator().manual_seed(0)
    x, y = adding_batch(4000, 10, g)
    assert x.shape == (10, 4000, 2) and y.shape == (4000, 1)
    marker = x[:, :, 1]
    assert torch.all(marker.sum(0) == 2)
    assert torch.all(marker[:5].sum(0) == 1) and torch.all(marker[5:].sum(0) == 1)    # one in each half
    assert torch.allclose((x[:, :, 0] * marker).sum(0), y[:, 0])
    assert torch.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    # Predicting the mean: MSE = Var(U1 + U2) = 1/6.
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(AddingTask.baseline, abs=0.01)
    x2, y2 = adding_batch(4000, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_adding_batch_matches_the_hand_builder():
    x, y = adding_batch(3, 8, torch.Generator().manual_seed(5))
    for n in range(3):
        marks = torch.nonzero(x[:, n, 1]).flatten().tolist()
        hx, hy = adding_example(x[:, n, 0], marks)
        assert torch.equal(hx, x[:, n]) and torch.allclose(hy, y[n])


def test_copy_hand_examples():
    x, y = copy_example([5, 2, 7], delay=2, alphabet=8)
    assert x.tolist() == [5, 2, 7, 0, 9, 0, 0, 0]
    assert y.tolist() == [0, 0, 0, 0, 0, 5, 2, 7]
    x, y = copy_example([5, 2, 7], delay=1, alphabet=8)
    assert x.tolist() == [5, 2, 7, 9, 0, 0, 0]
    assert y.tolist() == [0, 0, 0, 0, 5, 2, 7]
    with pytest.raises(ValueError, match="ids 1..8"):
        copy_example([0, 2], delay=2)


def test_copy_batch_matches_the_hand_builder():
    x, y = copy_batch(5, delay=4, length=3, alphabet=6, generator=torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (10, 5)
    for n in range(5):
        hx, hy = copy_example(x[:3, n], delay=4, alphabet=6)
        assert torch.equal(hx, x[:, n]) and torch.equal(hy, y[:, n])


def test_copy_task_error_and_baselines():
    task = CopyTask(delay=4, length=3, alphabet=6)
    assert (task.steps, task.input_size, task.output_size) == (10, 8, 7)
    x, y = task.batch(5, torch.Generator().manual_seed(2))
    perfect = torch.nn.functional.one_hot(y, 7).float() * 10
    assert task.error(perfect, y) == 0.0
    blanks = torch.nn.functional.one_hot(torch.zeros_like(y), 7).float() * 10
    assert task.error(blanks, y) == 1.0
    assert task.baseline == pytest.approx(1 - 1 / 6)
    assert task.loss_baseline == pytest.approx(3 * math.log(6) / 10)
    assert task.encode(x).shape == (10, 5, 8)


def test_training_is_reproducible_and_learns():
    task = make_task("adding", 5)
    kw = dict(steps=40, batch_size=16, hidden_size=8, lr=1e-2, engine="python", eval_size=64, log_every=5)
    a = train_memory(task, "gru", **kw)
    b = train_memory(task, "gru", **kw)
    assert a.error == b.error and a.curve == b.curve
    assert a.steps == 40 and not a.diverged and a.engine == "python"
    assert a.error < a.baseline            # even 40 steps at T=5 beat remembering nothing
    table = results_table([a])
    assert "| 5 |" in table and "gru MSE" in table


def test_cli_adding(tmp_path, capsys):
    out = tmp_path / "adding"
    code = main(["experiment", "adding", "--delays", "4", "6", "--cells", "rnn", "gru", "--steps", "5",
                 "--hidden-size", "8", "--batch-size", "8", "--eval-size", "16", "--engine", "python", "--out",
                 str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| delay T | rnn MSE | gru MSE | baseline |" in printed
    assert "| 4 |" in printed and "| 6 |" in printed and "0.167" in printed
    record = json.loads((out / "results.json").read_text())
    assert [(r["cell"], r["delay"], r["steps"]) for r in record["results"]] == \
        [("rnn", 4, 5), ("gru", 4, 5), ("rnn", 6, 5), ("gru", 6, 5)]
    assert (out / "adding.png").read_bytes().startswith(PNG)
    assert "| delay T |" in (out / "results.md").read_text()


def test_cli_copy(tmp_path, capsys):
    out = tmp_path / "copy"
    code = main(["experiment", "copy", "--delays", "3", "--cells", "lstm", "--length", "2", "--alphabet", "4",
                 "--steps", "3", "--hidden-size", "8", "--batch-size", "4", "--eval-size", "8", "--engine", "python",
                 "--out", str(out), "--quiet"])
    assert code == 0
    assert "lstm recall error" in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())["results"][0]
    assert 0.0 <= result["error"] <= 1.0 and result["baseline"] == pytest.approx(0.75)
    assert (out / "copy.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("argv, message", [
    (["adding", "--delays", "1"], "--delays must be an integer >= 2, got 1"),
    (["copy", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
])
def test_cli_bad_input(argv, message, capsys):
    assert _exit_code(["experiment", *argv]) == 2
    assert message in capsys.readouterr().err


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s exit code: returned, or raised by argparse for a value out of its range."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
