"""Which checkpoint is kept: of two evaluations with the same score the one with the lower validation loss (QA: a
translator of 2-3 word sentences scored BLEU 0 at every evaluation, so its first, untrained checkpoint stayed the
"best" and translated nothing)."""
from __future__ import annotations

import json

import torch

from lm_train_utils import HELLO, char_task, lm_test_env, records, tiny_model  # noqa: F401 (autouse)
from rnnkit.training import TrainConfig, Trainer


def _stuck_score_task():
    """The char LM task, its checkpoints chosen by a score that never moves (as BLEU 0 on short sentences)."""
    task = char_task(HELLO * 21, "hello world\nhello\n", batch_size=4, bptt=8, eval_batch_size=1)
    measured = task.evaluate
    task.metric, task.higher_is_better = "bleu", True
    task.evaluate = lambda model: {**measured(model), "bleu": 0.0}
    return task


def test_a_tie_in_the_score_goes_to_the_lower_loss(tmp_path):
    torch.manual_seed(0)
    task = _stuck_score_task()
    cfg = TrainConfig(optimizer="adam", lr=0.02, max_steps=8, eval_every=2, log_every=1, device="cpu")
    Trainer(tiny_model(task, hidden=8, embed=4), task, cfg, tmp_path, quiet=True).fit()
    evals = records(tmp_path, "eval")
    assert [r["bleu"] for r in evals] == [0.0] * 4
    best = min(evals, key=lambda r: r["loss"])
    assert best["step"] > evals[0]["step"]                         # training lowered the loss
    assert json.loads((tmp_path / "config.json").read_text())["step"] == best["step"]


def test_the_tie_break_survives_a_resume(tmp_path):
    torch.manual_seed(0)
    task = _stuck_score_task()
    cfg = TrainConfig(optimizer="adam", lr=0.02, max_steps=4, eval_every=2, log_every=1, device="cpu")
    first = Trainer(tiny_model(task, hidden=8, embed=4), task, cfg, tmp_path, quiet=True)
    first.fit()
    task = _stuck_score_task()
    again = Trainer(tiny_model(task, hidden=8, embed=4), task, TrainConfig(
        optimizer="adam", lr=0.02, max_steps=8, eval_every=2, log_every=1, device="cpu"), tmp_path, quiet=True)
    again.resume()
    assert again.best_loss == first.best_loss
    again.fit()
    best = min(records(tmp_path, "eval"), key=lambda r: r["loss"])
    assert json.loads((tmp_path / "config.json").read_text())["step"] == best["step"]
