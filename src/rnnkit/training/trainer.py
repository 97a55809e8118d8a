"""The training loop every task shares: optimizer, schedule, clipping, evaluation, checkpoints, resume, DDP.

A task (language model, classifier, ...) supplies the data and the loss through the :class:`Task` protocol;
the trainer owns everything else. A run folder ends up with ``model.safetensors`` + ``config.json`` (the best
model by the task's metric), ``resume.pt`` (optimizer, step, data position, RNG states, the task's carried
state), ``metrics.jsonl`` and ``loss.png``.

What a run folder can count on:

- nothing non-finite is saved: a NaN or infinite loss, validation metric or weight stops training with a message
  that says which checkpoints are kept (or that none exists);
- SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``, batch schedulers) both stop training at the end of the step
  under way (at once during an evaluation) and save the resume state; a second signal ends the process at once,
  the last saved state kept;
- a resumed run continues at the step its state was saved at: ``metrics.jsonl`` records of later steps (written
  before a kill) are dropped, and a run that already reached ``max_steps`` trains no further.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from . import distributed as dist
from .atomic import append_jsonl, rewrite_jsonl
from .checkpoint import (MODEL_FILE, RESUME_FILE, SAVE_ID_KEY, CheckpointError, describe_mismatch, load_resume,
                         lost_best_model, read_config, save_resume, save_run, weights_metadata)
from .config import TrainConfig
from .modes import evaluating
from .plots import plot_metrics
from .rng import rng_state, set_rng_state
from .signals import StopSignals
from .resuming import check_resumable, vocabulary_of


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a resume state that doesn't fit); the last good checkpoint stays."""


class Task(Protocol):
    """What a task gives the trainer."""

    name: str                 # "lm", "classify", ...
    metric: str               # key of evaluate()'s result that picks the best checkpoint
    higher_is_better: bool

    def steps_per_epoch(self) -> int: ...
    def batches(self, epoch: int, start: int) -> Iterator[Any]: ...     # the epoch's batches from index start
    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, Tensor, int]: ...
    # (objective to minimise, mean loss per item for display, items in the batch)
    def evaluate(self, model: nn.Module) -> dict[str, float]: ...
    def progress(self, loss: float) -> dict[str, str]: ...              # extra progress-bar fields for a loss
    def run_config(self) -> dict: ...                                    # config.json content besides training
    def state_dict(self) -> dict: ...                                    # carried state for an exact resume
    def load_state_dict(self, state: dict) -> None: ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but this PyTorch sees no CUDA device")
    return torch.device(name)


class Trainer:
    """Trains ``model`` on ``task`` into ``run_dir`` with the settings in ``cfg``."""

    def __init__(self, model: nn.Module, task: Task, cfg: TrainConfig, run_dir: str | Path,
                 quiet: bool = False) -> None:
        self.cfg, self.task, self.run_dir = cfg, task, Path(run_dir)
        self.device = resolve_device(cfg.device)
        dist.init(self.device)
        self.model = model.to(self.device)
        self.net = dist.wrap(self.model, self.device)      # DDP under torchrun, else the model itself
        self.optimizer = cfg.make_optimizer(self.model.parameters())
        self.is_main = dist.is_main()
        self.quiet = quiet or not self.is_main
        self.step = 0
        self.epoch = 1
        self.position = 0          # batches of the current epoch already done
        self.best: float | None = None
        self.bad_evals = 0
        self.elapsed = 0.0         # seconds of training in earlier sessions of this run
        self._started: float | None = None   # when this session's training began (monotonic clock)
        self.last_eval_step = -1
        self.last_metrics: dict[str, float] = {}
        self.best_step: int | None = None        # the step of the best model on disk (None: none saved)
        self.best_loss: float | None = None      # its validation loss: of two equal scores the lower loss wins
        self.best_save_id: str | None = None
        self.saved_step: int | None = None       # the step of the resume state on disk (None: none saved)
        self.resumed_from: int | None = None     # the step resume() found, if it ran
        self.signals = StopSignals()
        self._rank_states: list = []             # every rank's task and generator state at the last save, in
                                                 # rank order (they differ under torchrun; [0] is the writer's)

    def release(self) -> None:
        """Drop the DDP wrapper (the model stays): done before the process group is destroyed."""
        self.net = self.model

    # ------------------------------------------------------------------ state

    def _state(self) -> dict:
        """The resume state (rank 0 writes it, after :meth:`_save_resume` gathered every rank's own part)."""
        own = self._rank_states[0]
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "epoch": self.epoch, "position": self.position, "best": self.best, "bad_evals": self.bad_evals,
                "elapsed": self.trained_seconds(), "last_eval_step": self.last_eval_step, "rng": own["rng"],
                "task": own["task"], "optimizer_name": self.cfg.optimizer, "best_step": self.best_step,
                "best_save_id": self.best_save_id, "last_metrics": self.last_metrics, "best_loss": self.best_loss,
                "vocabulary": vocabulary_of(self.task), "world_size": dist.world_size(),   # (for check_resumable)
                **({"ranks": self._rank_states} if dist.world_size() > 1 else {})}

    def trained_seconds(self) -> float:
        """Seconds of training so far: earlier sessions plus this one, so a resume state saved mid-run counts both."""
        return self.elapsed + (time.monotonic() - self._started if self._started is not None else 0.0)

    def resume(self) -> None:
        """Continue exactly where ``resume.pt`` says training stood. Reads only: a state that doesn't fit the
        model, the optimizer or the task is a :class:`TrainingError` listing what differs."""
        path = self.run_dir / RESUME_FILE
        state = load_resume(self.run_dir)
        problem = describe_mismatch(state["model"], self.model.state_dict())
        if problem:
            raise TrainingError(f"{path} does not fit this model ({problem}); resume with the model options the "
                                f"run was trained with (its options.json), or start a new run") from None
        problem = check_resumable(state, path, self.task)     # the vocabulary, the number of processes
        if problem:
            raise TrainingError(problem)
        saved_optimizer = state.get("optimizer_name")
        if saved_optimizer is not None and saved_optimizer != self.cfg.optimizer:
            raise TrainingError(f"{path} holds the state of --optimizer {saved_optimizer}, not "
                                f"{self.cfg.optimizer}; resume with --optimizer {saved_optimizer}, or start a new run")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            for key in ("step", "epoch", "position", "best", "bad_evals", "elapsed", "last_eval_step"):
                setattr(self, key, state[key])
            own = (state.get("ranks") or [state] * dist.world_size())[dist.rank()]    # (each rank its own)
            set_rng_state(own["rng"])
            self.task.load_state_dict(own["task"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
            detail = " ".join(str(e).split()) or type(e).__name__
            raise TrainingError(f"{path} does not fit this model, optimizer and data: {detail}") from None
        self.best_step, self.best_save_id = state.get("best_step"), state.get("best_save_id")
        self.best_loss = state.get("best_loss")
        self.last_metrics = dict(state.get("last_metrics") or {})
        self.saved_step = self.resumed_from = self.step
        self._sync_best()

    def _sync_best(self) -> None:
        """Take the best model's value from the run folder when it isn't the one the resume state knew (a kill
        between saving the best model and the resume state), so that only a better model replaces it."""
        self.lost_best = lost_best_model(self.run_dir, self.best_step)     # (the command warns)
        meta = {} if self.lost_best else weights_metadata(self.run_dir)
        if not meta:                                           # no best model on disk: the next evaluation saves
            self.best = self.best_step = self.best_save_id = self.best_loss = None
            return
        if meta.get(SAVE_ID_KEY) == self.best_save_id:
            return
        try:
            config = read_config(self.run_dir)
        except CheckpointError:
            return
        mine = self.task.run_config().get("task")
        if config.get("task") != mine:                       # a file copied in by hand: never adopt its score
            raise TrainingError(f"{self.run_dir / MODEL_FILE}: holds a {config.get('task')!r} model, not this "
                                f"{mine!r} run's; put the run's own file back, or start a new run")
        try:
            value = float(config["metrics"][self.task.metric])
        except (KeyError, TypeError, ValueError):
            return
        if math.isfinite(value):
            self.best, self.best_step, self.best_save_id = value, config.get("step"), meta.get(SAVE_ID_KEY)
            self.best_loss = config["metrics"].get("loss")

    def kept(self) -> str:
        """What a failed run leaves: which checkpoints are in the run folder, or that none exists."""
        parts = []
        if self.best_step is not None:
            parts.append(f"the best model from step {self.best_step} ({self.task.metric} {self.best:.4g}) in "
                         f"{MODEL_FILE}")
        if self.saved_step is not None:
            parts.append(f"the resume state from step {self.saved_step} in {RESUME_FILE}")
        if not parts:
            return f"No checkpoint was saved in {self.run_dir} (none exists: nothing to resume)"
        return f"Kept in {self.run_dir}: " + " and ".join(parts)

    def _save_resume(self) -> None:
        self._rank_states = dist.gather({"task": self.task.state_dict(), "rng": rng_state()})   # (collective)
        if self.is_main:
            try:
                save_resume(self.run_dir, self._state())
            except ValueError as e:
                raise TrainingError(f"{e} at step {self.step} (epoch {self.epoch}); stopped. {self.kept()}; "
                                    f"try a lower --lr or --clip") from None
            self.saved_step = self.step

    def _save_best(self, metrics: dict) -> None:
        if self.is_main:
            try:
                save_id = save_run(self.run_dir, self.model, {**self.task.run_config(), "training": self.cfg.to_dict(),
                                                              "step": self.step, "epoch": self.epoch,
                                                              "metrics": metrics})
            except ValueError as e:
                raise TrainingError(f"{e} at step {self.step} (epoch {self.epoch}); stopped. {self.kept()}; "
                                    f"try a lower --lr or --clip") from None
            self.best_step, self.best_save_id = self.step, save_id

    def _log(self, record: dict) -> None:
        if self.is_main:
            append_jsonl(self.run_dir / "metrics.jsonl", {**record, "step": self.step, "epoch": self.epoch,
                                                          "seconds": round(self.trained_seconds(), 1)})

    # ------------------------------------------------------------------ loop

    def evaluate(self) -> dict[str, float]:
        """Evaluate, log, keep the best checkpoint, count evaluations without improvement."""
        self.signals.interruptible = True                 # a signal stops an evaluation at once: it changes nothing
        try:
            if self.signals.received is not None:
                raise KeyboardInterrupt
            with evaluating(self.model), torch.no_grad():
                metrics = self.task.evaluate(self.model)
        finally:
            self.signals.interruptible = False
        value = metrics[self.task.metric]
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise TrainingError(f"the validation {', '.join(bad)} became {metrics[bad[0]]} at step {self.step} "
                                f"(epoch {self.epoch}); stopped, this model not saved. {self.kept()}; try a lower "
                                f"--lr or --clip")
        self.last_eval_step = self.step
        self.last_metrics = metrics
        loss = metrics.get("loss")      # of two equal scores the lower loss wins (BLEU is 0 on short sentences)
        tie = value == self.best and loss is not None and self.best_loss is not None and loss < self.best_loss
        better = self.best is None or tie or (value > self.best if self.task.higher_is_better else value < self.best)
        if better:
            self._save_best(metrics)                      # first: it refuses non-finite weights
            self.best, self.best_loss, self.bad_evals = value, loss, 0
        else:
            self.bad_evals += 1
        self._log({"kind": "eval", **metrics, "best": self.best})
        return metrics

    def fit(self) -> str:
        """Train until the epochs, steps, time budget or patience run out; returns why it stopped."""
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        per_epoch = self.task.steps_per_epoch()
        total = cfg.epochs * per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * per_epoch)
        bar = tqdm(total=self._bar_total(total, None), initial=min(self.step, total), disable=self.quiet,
                   dynamic_ncols=True, unit="step", smoothing=0.1 if cfg.minutes is None else 0.0)
        # with a time budget the bar's total comes from this session's average rate (evaluations included), and
        # so does its ETA (smoothing 0): the time left is then the budget left
        if self.is_main:                    # records past the step training continues from (a kill after them)
            rewrite_jsonl(self.run_dir / "metrics.jsonl", lambda r: not isinstance(r.get("step"), int)
                          or r["step"] <= self.step)
        self._started = time.monotonic()
        first_step = self.step
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 and self.device.type == "cuda"
                    else nullcontext())
        self.model.train()
        with self.signals:
            try:
                reason = self._train(cfg, total, bar, first_step, autocast)
            except KeyboardInterrupt:
                reason = "interrupted"
            finally:
                self.elapsed, self._started = self.trained_seconds(), None
                bar.close()
            self._save_resume()
        if self.is_main:
            plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png", self.task.metric)
        return reason

    def _train(self, cfg: TrainConfig, total: int, bar, first_step: int, autocast) -> str:
        """The loop of :meth:`fit`; returns why it stopped."""
        reason = self._should_stop()                      # a finished run resumed trains no further
        if (reason == "finished" and self.resumed_from and cfg.eval_every and self.step % cfg.eval_every == 0
                and self.last_eval_step != self.step):    # stopped during this step's evaluation: do it now
            self.evaluate()
            self._save_resume()
            reason = self._should_stop()
        while self.epoch <= cfg.epochs and reason == "finished":
            tick, items = time.monotonic(), 0
            for batch in self.task.batches(self.epoch, self.position):
                lr = self._set_lr(total)
                snapshot = (self.task.state_dict(), rng_state())
                try:
                    with autocast:
                        objective, loss, n = self.task.loss(self.net, batch)
                    norm = self._update(objective)
                except KeyboardInterrupt:     # mid-step: put back what the step used, so resume is exact
                    self.task.load_state_dict(snapshot[0])
                    set_rng_state(snapshot[1])
                    raise
                self.step += 1
                self.position += 1
                items += n
                value = loss.item()
                now = time.monotonic()
                if not self.quiet:
                    bar.total = self._bar_total(total, (self.step - first_step) / max(now - self._started, 1e-9))
                    bar.update(1)
                    bar.set_postfix({"ep": self.epoch, "loss": f"{value:.3f}", **self.task.progress(value),
                                     "tok/s": f"{items / max(now - tick, 1e-9):,.0f}", "lr": f"{lr:.3g}",
                                     "gnorm": f"{float(norm):.2f}"}, refresh=False)
                if self.step % cfg.log_every == 0:
                    self._log({"kind": "train", "loss": value, "lr": lr, "grad_norm": float(norm)})
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate()
                    self._save_resume()
                reason = self._should_stop()
                if reason != "finished":
                    break
            else:                                    # the epoch is complete: evaluate it, then start the next
                if not cfg.eval_every and self.last_eval_step != self.step:
                    self.evaluate()
                self.epoch += 1
                self.position = 0
                self._save_resume()
                reason = self._should_stop(interrupt_only=True)
        if reason != "interrupted" and self.last_eval_step != self.step:
            self.evaluate()
        return reason

    def _bar_total(self, step_total: int, steps_per_second: float | None) -> int | None:
        """Where the progress bar ends: see :func:`progress_total`."""
        budget = self.cfg.minutes
        left = None if budget is None else max(0.0, 60 * budget - self.trained_seconds())
        return progress_total(step_total, self.step, left, steps_per_second)

    def _set_lr(self, step_total: int) -> float:
        """Put this step's learning rate into the optimizer; the budget spent is the step's share of the steps or,
        with ``minutes``, of the time, whichever is further on."""
        done = self.step / max(step_total, 1)
        if self.cfg.minutes is not None:
            done = max(done, self.trained_seconds() / (60 * self.cfg.minutes))
        lr = self.cfg.lr_at(self.epoch, done)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _update(self, objective: Tensor) -> Tensor:
        """Backward, clip, optimizer step; returns the gradient norm before clipping."""
        if not torch.isfinite(objective):
            raise TrainingError(f"the loss became {objective.item()} at step {self.step + 1} (epoch {self.epoch}); "
                                f"stopped. {self.kept()}; try a lower --lr or --clip")
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        clip = self.cfg.clip
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip) if clip else _grad_norm(self.model)
        self.optimizer.step()
        return norm

    def _should_stop(self, interrupt_only: bool = False) -> str:
        cfg = self.cfg
        reason = "finished"
        if self.signals.received is not None:
            reason = "interrupted"
        elif interrupt_only:
            pass
        elif cfg.max_steps is not None and self.step >= cfg.max_steps:
            reason = "max_steps"
        elif cfg.minutes is not None and self.trained_seconds() >= 60 * cfg.minutes:
            reason = "time budget"
        elif cfg.patience is not None and self.bad_evals >= cfg.patience:
            reason = "early stopping"
        return dist.agree(reason)                          # every rank stops at the same step


def _grad_norm(model: nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def perplexity(loss: float) -> float:
    """``exp(loss)`` of a mean cross-entropy in nats, capped at ``exp(50)`` (an untrained model's loss can overflow)."""
    return math.exp(min(loss, 50.0))


def progress_total(step_total: int, step: int, seconds_left: float | None,
                   steps_per_second: float | None) -> int | None:
    """The step a run is expected to stop at, for the progress bar: ``step_total`` (the epochs or the step limit),
    or, with a time budget (``seconds_left`` not None), the step the budget runs out at the current rate if that
    comes first, so the bar's remaining time is the run's. None while a time-budgeted run has no rate yet."""
    if seconds_left is None:
        return step_total
    if not steps_per_second:
        return None
    return max(step, min(step_total, step + int(seconds_left * steps_per_second)))
