"""The shared Trainer on a tiny char-level language model: learning, resume, schedule, clipping, NaN, best."""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from lm_train_utils import HELLO, char_task, flat_params, lm_test_env, records, tiny_model  # noqa: F401 (autouse)
from rnnkit.tasks.language_modeling import load_run as load_lm
from rnnkit.models.language_model import lm_loss
from rnnkit.training import TrainConfig, Trainer, TrainingError


def test_repetitive_text_is_learnt_to_low_loss(tmp_path):
    torch.manual_seed(0)
    task = char_task(HELLO * 60, HELLO * 4, batch_size=4, bptt=16, eval_batch_size=1)
    model = tiny_model(task, hidden=32, embed=16)
    cfg = TrainConfig(optimizer="adam", lr=0.02, max_steps=40, eval_every=20, log_every=1, device="cpu")
    reason = Trainer(model, task, cfg, tmp_path, quiet=True).fit()
    assert reason == "max_steps"
    train = records(tmp_path, "train")
    evals = records(tmp_path, "eval")
    assert [r["step"] for r in train] == list(range(1, 41))
    assert train[0]["loss"] > 1.5                    # ln(9) = 2.2 at the start
    assert sum(r["loss"] for r in train[-5:]) / 5 < 0.3
    assert [r["step"] for r in evals] == [20, 40]
    assert evals[-1]["loss"] < 0.3
    assert evals[-1]["bpc"] == pytest.approx(evals[-1]["loss"] / math.log(2))
    assert evals[-1]["tokens"] == len(HELLO * 4) - 1  # every target of the validation text
    assert (tmp_path / "loss.png").stat().st_size > 1000


def _resume_setup(max_steps: int, run_dir):
    torch.manual_seed(1234)
    # 21 lines: 252 characters in 4 columns of 63 rows -> 8 windows of <= 8 steps per epoch
    task = char_task(HELLO * 21, "hello world\nhello\n", batch_size=4, bptt=8, eval_batch_size=1)
    model = tiny_model(task, hidden=16, embed=8, layers=2, dropout=0.3)   # dropout: the RNG state matters
    cfg = TrainConfig(optimizer="adam", lr=0.01, lr_decay=0.5, decay_after=1, epochs=5, max_steps=max_steps,
                      log_every=1, device="cpu")
    trainer = Trainer(model, task, cfg, run_dir, quiet=True)
    assert task.steps_per_epoch() == 8
    return trainer


@pytest.mark.parametrize("split", [6, 8, 9], ids=["mid-epoch", "end-of-epoch", "start-of-epoch-2"])
def test_resume_equals_uninterrupted_run(tmp_path, split):
    a = _resume_setup(12, tmp_path / "a")
    assert a.fit() == "max_steps"
    b = _resume_setup(split, tmp_path / "b")
    assert b.fit() == "max_steps"
    torch.manual_seed(999)                            # resume must restore every RNG itself
    torch.rand(100)
    b2 = _resume_setup(12, tmp_path / "b")
    b2.resume()
    assert b2.step == split
    assert b2.fit() == "max_steps"

    loss_a = {r["step"]: r for r in records(tmp_path / "a", "train")}
    loss_b = {r["step"]: r for r in records(tmp_path / "b", "train")}
    assert sorted(loss_a) == sorted(loss_b) == list(range(1, 13))
    for step in range(split + 1, 13):
        assert loss_b[step]["loss"] == pytest.approx(loss_a[step]["loss"], abs=1e-6), step
        assert loss_b[step]["grad_norm"] == pytest.approx(loss_a[step]["grad_norm"], abs=1e-6), step
        assert loss_b[step]["lr"] == loss_a[step]["lr"]
    assert loss_a[12]["lr"] == pytest.approx(0.005)  # epoch 2: halved
    assert torch.allclose(flat_params(a.model), flat_params(b2.model), rtol=0, atol=1e-6)
    assert (b2.epoch, b2.position) == (a.epoch, a.position)
    # dropout really is on, so equal losses needed the RNG state restored: two passes differ
    x, y = b2.task.train.window(0)
    b2.model.train()
    assert lm_loss(b2.model(x)[0], y).item() != lm_loss(b2.model(x)[0], y).item()


def test_zaremba_schedule_hand_values():
    cfg = TrainConfig(optimizer="sgd", lr=1.0, lr_decay=0.5, decay_after=4, epochs=13)
    assert [cfg.lr_at(e) for e in range(1, 8)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
    assert cfg.lr_at(13) == pytest.approx(0.5 ** 9)
    medium = TrainConfig(optimizer="sgd", lr=1.0, lr_decay=0.8, decay_after=6, epochs=39)
    assert medium.lr_at(6) == 1.0 and medium.lr_at(7) == pytest.approx(0.8)
    assert medium.lr_at(39) == pytest.approx(0.8 ** 33)
    assert TrainConfig(lr=3e-3).lr_at(50) == 3e-3   # no decay by default


def test_trainer_applies_the_schedule_each_epoch(tmp_path):
    torch.manual_seed(0)
    task = char_task(HELLO * 6, HELLO, batch_size=4, bptt=8)      # 18 rows: 3 windows per epoch
    model = tiny_model(task, hidden=8, embed=4)
    cfg = TrainConfig(optimizer="sgd", lr=0.1, lr_decay=0.5, decay_after=1, epochs=3, log_every=1, device="cpu")
    assert Trainer(model, task, cfg, tmp_path, quiet=True).fit() == "finished"
    train = records(tmp_path, "train")
    assert [r["lr"] for r in train] == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3)
    assert [r["epoch"] for r in train] == [1] * 3 + [2] * 3 + [3] * 3
    assert [r["step"] for r in records(tmp_path, "eval")] == [3, 6, 9]   # one evaluation per epoch


@pytest.mark.parametrize("clip", [0.05, 0.0])
def test_logged_grad_norm_is_before_clipping(tmp_path, clip):
    torch.manual_seed(0)
    task = char_task(HELLO * 10, HELLO, batch_size=4, bptt=8)
    model = tiny_model(task, hidden=16, embed=8)
    before = copy.deepcopy(model)
    # the same first window by hand
    x, y = task.train.window(0)
    manual = copy.deepcopy(model)
    lm_loss(manual(x)[0], y).backward()
    grads = [p.grad.clone() for p in manual.parameters()]
    norm = torch.cat([g.reshape(-1) for g in grads]).norm().item()
    assert norm > 0.05                                          # so that clipping at 0.05 acts

    cfg = TrainConfig(optimizer="sgd", lr=1.0, clip=clip, max_steps=1, log_every=1, device="cpu")
    Trainer(model, task, cfg, tmp_path, quiet=True).fit()
    logged = records(tmp_path, "train")[0]["grad_norm"]
    assert logged == pytest.approx(norm, rel=1e-5)
    # SGD with lr 1: the update is the (clipped) gradient
    delta = flat_params(before) - flat_params(model)
    expected = torch.cat([g.reshape(-1) for g in grads])
    if clip:
        expected = expected * (clip / (norm + 1e-6))
        assert delta.norm().item() == pytest.approx(clip, rel=1e-4)
    assert torch.allclose(delta, expected, atol=1e-6)


class _PoisonedTask:
    """Wraps a task; at the ``at``-th loss call it puts a NaN into the decoder first, noting the saved bytes."""

    def __init__(self, task, at: int, run_dir) -> None:
        self._task, self.at, self.run_dir, self.calls = task, at, run_dir, 0
        self.saved_bytes = None

    def __getattr__(self, name):
        return getattr(self._task, name)

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            self.saved_bytes = (self.run_dir / "model.safetensors").read_bytes()
            with torch.no_grad():
                model.decoder.bias[0] = float("nan")
        return self._task.loss(model, batch)


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    inner = char_task(HELLO * 10, HELLO, batch_size=4, bptt=8)
    model = tiny_model(inner, hidden=8, embed=4)
    task = _PoisonedTask(inner, at=5, run_dir=tmp_path)
    task.name, task.metric, task.higher_is_better = inner.name, inner.metric, inner.higher_is_better
    cfg = TrainConfig(optimizer="adam", lr=0.01, eval_every=2, log_every=1, max_steps=20, device="cpu")
    trainer = Trainer(model, task, cfg, tmp_path, quiet=True)
    with pytest.raises(TrainingError, match=r"at step 5 \(epoch 2\)") as err:
        trainer.fit()
    assert "nan" in str(err.value) and str(tmp_path) in str(err.value)
    assert task.saved_bytes is not None and len(task.saved_bytes) > 100
    assert (tmp_path / "model.safetensors").read_bytes() == task.saved_bytes
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["step"] == 4
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert max(r["step"] for r in records(tmp_path, "train")) == 4


class _ScriptedEvalTask:
    """A real task whose validation losses are scripted, to test best-checkpoint and early stopping."""

    def __init__(self, task, losses) -> None:
        self._task, self.losses, self.snapshots = task, list(losses), []
        self.name, self.metric, self.higher_is_better = task.name, task.metric, task.higher_is_better

    def __getattr__(self, name):
        return getattr(self._task, name)

    def evaluate(self, model):
        self.snapshots.append(flat_params(model).clone())
        return {"loss": self.losses.pop(0)}


def test_best_checkpoint_kept_and_early_stopping(tmp_path):
    torch.manual_seed(0)
    inner = char_task(HELLO * 10, HELLO, batch_size=4, bptt=8)
    model = tiny_model(inner, hidden=8, embed=4)
    task = _ScriptedEvalTask(inner, [3.0, 1.0, 2.0, 1.5, 0.5])
    cfg = TrainConfig(optimizer="adam", lr=0.01, eval_every=2, patience=2, max_steps=100, device="cpu")
    trainer = Trainer(model, task, cfg, tmp_path, quiet=True)
    assert trainer.fit() == "early stopping"
    assert trainer.step == 8 and trainer.best == 1.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["step"] == 4 and config["metrics"] == {"loss": 1.0}
    loaded, _, _ = load_lm(tmp_path)
    assert torch.equal(flat_params(loaded), task.snapshots[1])        # the weights of the best evaluation
    assert [r["best"] for r in records(tmp_path, "eval")] == [3.0, 1.0, 1.0, 1.0]


class _InterruptedTask:
    """Wraps a task; raises KeyboardInterrupt right after the ``at``-th loss, as Ctrl-C during the backward would."""

    def __init__(self, task, at: int) -> None:
        self._task, self.at, self.calls = task, at, 0
        self.name, self.metric, self.higher_is_better = task.name, task.metric, task.higher_is_better

    def __getattr__(self, name):
        return getattr(self._task, name)

    def loss(self, model, batch):
        self.calls += 1
        result = self._task.loss(model, batch)
        if self.calls == self.at:
            raise KeyboardInterrupt
        return result


def test_ctrl_c_saves_and_stops_cleanly(tmp_path):
    trainer = _resume_setup(12, tmp_path)
    trainer.task = _InterruptedTask(trainer.task, at=4)
    assert trainer.fit() == "interrupted"
    assert trainer.step == 3
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert state["step"] == 3 and state["position"] == 3
    assert [r["step"] for r in records(tmp_path, "train")] == [1, 2, 3]


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(tmp_path):
    a = _resume_setup(12, tmp_path / "a")
    a.fit()
    b = _resume_setup(12, tmp_path / "b")
    b.task = _InterruptedTask(b.task, at=5)
    assert b.fit() == "interrupted"
    b2 = _resume_setup(12, tmp_path / "b")
    b2.resume()
    assert b2.fit() == "max_steps"
    loss_a = [r["loss"] for r in records(tmp_path / "a", "train")]
    loss_b = [r["loss"] for r in records(tmp_path / "b", "train")]
    assert loss_b == pytest.approx(loss_a, abs=1e-6)


def test_resume_states_saved_mid_run_count_this_sessions_time(tmp_path, monkeypatch):
    """A run killed after a periodic save resumes with the time it already trained, not with none."""
    from rnnkit.training import trainer as trainer_module
    clock = iter(range(0, 10_000, 10))                                 # every reading: 10 s later
    monkeypatch.setattr(trainer_module.time, "monotonic", lambda: float(next(clock)))
    trainer = _resume_setup(6, tmp_path)
    trainer.cfg.eval_every = 2
    saved = []
    state = trainer._state
    monkeypatch.setattr(trainer, "_state", lambda: saved.append(state()["elapsed"]) or state())
    trainer.fit()
    assert len(saved) == 4 and saved[0] > 0 and saved == sorted(saved)  # three evaluations, then the end
    assert torch.load(tmp_path / "resume.pt", weights_only=True)["elapsed"] == trainer.elapsed > saved[-2]
    seconds = [r["seconds"] for r in records(tmp_path, "eval")]            # the training time of each record
    assert len(seconds) == 3 and 0 < seconds[0] < seconds[1] < seconds[2] <= trainer.elapsed


def test_decay_last_hand_values():
    cfg = TrainConfig(optimizer="sgd", lr=30.0, decay_last=0.5, epochs=3)
    assert [cfg.lr_at(1, d) for d in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2)] == pytest.approx(
        [30.0, 30.0, 30.0, 15.0, 6.0, 0.0, 0.0])
    both = TrainConfig(optimizer="sgd", lr=1.0, lr_decay=0.5, decay_after=1, decay_last=0.25, epochs=3)
    assert both.lr_at(3, 0.875) == pytest.approx(0.25 * 0.5)          # the epoch decay, then the linear ramp
    with pytest.raises(ValueError, match="decay_last"):
        TrainConfig(decay_last=1.5)


def test_trainer_ramps_the_learning_rate_down_each_step(tmp_path):
    torch.manual_seed(0)
    task = char_task(HELLO * 6, HELLO, batch_size=4, bptt=8)      # 3 windows per epoch
    model = tiny_model(task, hidden=8, embed=4)
    cfg = TrainConfig(optimizer="sgd", lr=0.1, decay_last=0.5, epochs=4, log_every=1, device="cpu")
    assert Trainer(model, task, cfg, tmp_path, quiet=True).fit() == "finished"
    # 12 steps; step k (1-based) runs with k - 1 of them done: full rate to the half, then (12 - k + 1) / 6 of it
    expected = [0.1] * 7 + [0.1 * (12 - k + 1) / 6 for k in range(8, 13)]
    assert [r["lr"] for r in records(tmp_path, "train")] == pytest.approx(expected)
