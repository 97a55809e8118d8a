"""``rnnkit train classify --ensemble K``: train K classifiers one after another and keep their average.

Member ``i`` is an ordinary run in ``RUN/members/i`` (its own ``model.safetensors``, ``resume.pt``,
``metrics.jsonl``), trained with seed ``--seed + i`` (its initialisation, data order and dropout masks) exactly
as ``rnnkit train classify --seed SEED+i`` would train it alone, early stopping included. The time budget
(``--minutes``) is the whole ensemble's: each member gets an equal share of what earlier members left.

After each member the run folder's model becomes the ensemble of the members so far
(:class:`~rnnkit.models.ensemble.EnsembleClassifier`: the mean of their probabilities), with its validation
scores in ``config.json`` and one ``eval`` record (``members``: how many) in the run's ``metrics.jsonl``; so an
interrupted run still has a usable model, and ``--resume`` continues with the member it stopped in.
``RUN/ensemble.json`` lists the finished members.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..models.classifier import Classifier
from ..models.ensemble import EnsembleClassifier
from ..training import distributed as dist
from ..training.atomic import append_jsonl, write_json
from ..training.checkpoint import MODEL_FILE, RESUME_FILE, load_weights, save_run
from ..training.config import TrainConfig
from ..training.rng import seed_everything
from ..training.signals import StopSignals
from ..training.trainer import Trainer, TrainingError

MEMBERS_DIR = "members"
STATE_FILE = "ensemble.json"


def member_budget(total_minutes: float | None, used_seconds: float, members_left: int) -> float | None:
    """A member's time budget in minutes: an equal share of what is left of ``total_minutes`` (None: no limit),
    never below a tenth of a second so that the member still starts and evaluates once."""
    if total_minutes is None:
        return None
    left = max(0.0, 60 * total_minutes - used_seconds)
    return max(left / members_left / 60, 0.1 / 60)


class EnsembleTrainer:
    """Trains the members of ``model`` (an :class:`EnsembleClassifier`) one after another into ``run_dir``.

    Has what ``train_and_report`` uses of a :class:`~rnnkit.training.trainer.Trainer`: ``resume()``, ``fit()``
    (returns why the last member stopped), ``step`` (all members' steps), ``elapsed`` and ``signals``.
    ``member_trainer`` builds each member's trainer (e.g. with checkpoint averaging); default :class:`Trainer`.
    """

    def __init__(self, model: EnsembleClassifier, task, cfg: TrainConfig, run_dir: str | Path, quiet: bool = False,
                 member_trainer: Callable[..., Trainer] = Trainer) -> None:
        self.model, self.task, self.cfg, self.run_dir = model, task, cfg, Path(run_dir)
        self.quiet, self.member_trainer = quiet, member_trainer
        self.done: list[dict] = []          # per finished member: steps, seconds, its best validation accuracy
        self.resuming = False
        self.current: Trainer | None = None
        self.signals = StopSignals()

    @property
    def size(self) -> int:
        return len(self.model)

    @property
    def step(self) -> int:
        return sum(d["steps"] for d in self.done) + (self.current.step if self.current is not None else 0)

    @property
    def elapsed(self) -> float:
        return sum(d["seconds"] for d in self.done) + (self.current.elapsed if self.current is not None else 0.0)

    def release(self) -> None:
        """Drop the member trainer under way (its DDP wrapper) before the process group is destroyed."""
        if self.current is not None:
            self.current.release()

    def member_dir(self, i: int) -> Path:
        return self.run_dir / MEMBERS_DIR / str(i)

    @property
    def unfinished_note(self) -> str:
        """While no member has finished (the run folder has no model yet): where the member under way keeps its
        best model so far, if it saved one; else empty."""
        if self.done or self.current is None or not (self.current.run_dir / MODEL_FILE).is_file():
            return ""
        return (f" (the ensemble's first member is unfinished; its best model so far is in "
                f"{self.current.run_dir})")

    def resume(self) -> None:
        """Continue where the run stopped: finished members are kept, the interrupted one resumes."""
        self.resuming = True
        path = self.run_dir / STATE_FILE
        if path.is_file():
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("size") != self.size:
                raise TrainingError(f"{path}: the run is an ensemble of {state.get('size')}, not {self.size}; "
                                    f"resume with --ensemble {state.get('size')}")
            self.done = list(state["done"])

    def fit(self) -> str:
        """Train the members that are not finished; after each, save and evaluate the ensemble so far."""
        main = dist.is_main()
        if not self.resuming and main:                 # a new run (or --force): no member of an older one stays
            shutil.rmtree(self.run_dir / MEMBERS_DIR, ignore_errors=True)
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        for i in range(len(self.done)):                # finished members: their best weights
            load_weights(self.member_dir(i), self.model.members[i])
        reason = "finished"
        for i in range(len(self.done), self.size):
            reason = self._train_member(i)
            if reason == "interrupted":
                return reason
            self._finish_member(i, reason)
        return reason

    def _train_member(self, i: int) -> str:
        seed = self.cfg.seed + i
        used = sum(d["seconds"] for d in self.done)
        cfg = replace(self.cfg, seed=seed, minutes=member_budget(self.cfg.minutes, used, self.size - i))
        member = self.model.members[i]
        task = copy.copy(self.task)                     # the member's own data order
        task.seed = seed
        folder = self.member_dir(i)
        resuming = self.resuming and (folder / RESUME_FILE).is_file()
        if not resuming:                               # as `--seed SEED+i` alone: seed, then initialise
            seed_everything(seed)
            member.load_state_dict(Classifier(member.config).state_dict())
        self.current = self.member_trainer(member, task, cfg, folder, quiet=self.quiet)
        self.signals = self.current.signals
        if resuming:
            self.current.resume()
        return self.current.fit()

    def _finish_member(self, i: int, reason: str) -> None:
        trainer = self.current
        assert trainer is not None
        load_weights(self.member_dir(i), self.model.members[i])
        self.done.append({"member": i, "seed": self.cfg.seed + i, "steps": trainer.step,
                          "seconds": round(trainer.elapsed, 1), "best_step": trainer.best_step,
                          "accuracy": trainer.best, "stopped": reason})
        self.current = None
        if not dist.is_main():
            return
        sub = EnsembleClassifier(list(self.model.members[:i + 1]))
        metrics = self.task.evaluate(sub)
        model_config = {**self.task.run_config()["model"], "ensemble": i + 1}
        save_run(self.run_dir, sub, {**self.task.run_config(), "model": model_config,
                                     "training": self.cfg.to_dict(), "step": self.step, "epoch": None,
                                     "metrics": metrics, "members": self.done})
        write_json(self.run_dir / STATE_FILE, {"size": self.size, "done": self.done})
        append_jsonl(self.run_dir / "metrics.jsonl", {"kind": "eval", **metrics, "members": i + 1,
                                                       "member_accuracy": self.done[-1]["accuracy"],
                                                       "step": self.step, "epoch": i + 1,
                                                       "seconds": round(self.elapsed, 1)})
        print(f"rnnkit: member {i + 1}/{self.size} (seed {self.cfg.seed + i}): stopped ({reason}) after "
              f"{trainer.step:,} steps, {trainer.elapsed / 60:.1f} min, best validation accuracy "
              f"{trainer.best:.4f}; ensemble of {i + 1}: accuracy {metrics['accuracy']:.4f}", file=sys.stderr)

