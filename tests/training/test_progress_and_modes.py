"""The progress bar counts to whichever limit ends the run first; evaluation mode is always given back; one seed
seeds every generator; perplexity."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

import rnnkit.training.trainer as trainer_module
from lm_train_utils import HELLO, char_task, lm_test_env, tiny_model  # noqa: F401 (autouse)
from rnnkit.training import TrainConfig, Trainer, evaluating, perplexity, seed_everything
from rnnkit.training.trainer import progress_total


def test_progress_total_is_the_first_limit_reached():
    assert progress_total(43_950, 0, None, None) == 43_950                  # no time budget: the steps
    assert progress_total(43_950, 0, 180.0, None) is None                   # budget, no rate yet: unknown
    assert progress_total(43_950, 100, 180.0, 2.0) == 100 + 360             # the budget ends first
    assert progress_total(400, 100, 180.0, 2.0) == 400                      # the steps end first
    assert progress_total(43_950, 100, 0.0, 2.0) == 100                     # budget spent: ends here


class RecordingBar:
    """Stands in for tqdm: records the total at every update."""

    instances: list["RecordingBar"] = []

    def __init__(self, total=None, initial=0, smoothing=0.3, **_) -> None:
        self.total, self.n, self.totals, self.smoothing = total, initial, [total], smoothing
        RecordingBar.instances.append(self)

    def update(self, k: int) -> None:
        self.n += k
        self.totals.append(self.total)

    def set_postfix(self, *_, **__) -> None:
        pass

    def close(self) -> None:
        pass


def test_bar_counts_to_the_time_budget_not_the_epochs(tmp_path, monkeypatch):
    """``--minutes`` with epochs worth 100,000 steps: the bar's total is where the budget ends, and the last
    total is the step training stopped at (an honest ETA), not 100,000 (today's demo showed 1:20:04 left)."""
    monkeypatch.setattr(trainer_module, "tqdm", RecordingBar)
    clock = [0.0]
    monkeypatch.setattr(trainer_module.time, "monotonic", lambda: clock[0])
    task = char_task(HELLO * 20, HELLO * 2, batch_size=2, bptt=8, eval_batch_size=1)
    steps_per_epoch = task.steps_per_epoch()
    model = tiny_model(task, hidden=8, embed=4)
    original = task.loss

    def loss(model, batch):                                              # each step takes 0.5 s on the fake clock
        clock[0] += 0.5
        return original(model, batch)

    task.loss = loss
    cfg = TrainConfig(epochs=100_000 // steps_per_epoch, minutes=0.25, eval_every=0, log_every=1000,
                      device="cpu")
    trainer = Trainer(model, task, cfg, tmp_path, quiet=False)
    RecordingBar.instances.clear()
    assert trainer.fit() == "time budget"
    assert trainer.step == 30                                             # 15 s at 2 steps per second
    totals = RecordingBar.instances[0].totals
    assert totals[0] is None                                              # no rate before the first step
    assert all(t == 30 for t in totals[1:])                               # 1 + 14.5 s x 2 steps/s, then the same
    assert RecordingBar.instances[0].smoothing == 0                       # its ETA: the same average rate
    assert cfg.epochs * steps_per_epoch > 99_000


def test_evaluating_restores_the_previous_mode_even_after_an_error():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5))
    for before in (True, False):
        model.train(before)
        with evaluating(model) as m:
            assert m is model and not model.training
        assert model.training is before
        with pytest.raises(RuntimeError, match="boom"):
            with evaluating(model):
                raise RuntimeError("boom")
        assert model.training is before


def test_seed_everything_seeds_torch_python_and_numpy():
    seed_everything(7)
    a = (torch.rand(3), random.random(), np.random.rand())
    seed_everything(7)
    b = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_perplexity_is_exp_of_the_loss_capped():
    assert perplexity(math.log(20.0)) == pytest.approx(20.0)
    assert perplexity(1e6) == pytest.approx(math.exp(50.0))
