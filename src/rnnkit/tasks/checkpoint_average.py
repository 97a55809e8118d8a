"""``--average-checkpoints K``: evaluate and keep the mean of the last K evaluation checkpoints' weights.

At every evaluation the current weights join a window of the last ``K`` evaluation-time snapshots; the model
that is evaluated (and saved when it is the best so far) is their element-wise mean, as Vaswani et al. averaged
their last checkpoints and as stochastic weight averaging (Izmailov et al. 2018) averages the iterates of one
run. Training itself continues from the current, un-averaged weights. Each evaluation record in
``metrics.jsonl`` also has ``raw_accuracy`` (the task's metric, prefixed ``raw_``): the current weights' score,
so one run shows what the averaging adds. The window is part of the resume state.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..training.checkpoint import load_resume
from ..training.modes import evaluating
from ..training.trainer import Trainer


def average_state(states: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The element-wise mean of state dicts (floating tensors; others are taken from the last one)."""
    if not states:
        raise ValueError("nothing to average")
    last = states[-1]
    return {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v for k, v in last.items()}


class CheckpointAveragingTrainer(Trainer):
    """The shared trainer, evaluating and saving the mean of the last ``window`` evaluation checkpoints."""

    def __init__(self, *args, window: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if window < 1:
            raise ValueError(f"the averaging window must be at least 1 checkpoint, got {window}")
        self.window = window
        self.snapshots: list[dict[str, Tensor]] = []
        self._raw: dict[str, float] = {}

    def evaluate(self) -> dict[str, float]:
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.snapshots = (self.snapshots + [current])[-self.window:]
        if len(self.snapshots) == 1:
            self._raw = {}
            return super().evaluate()
        with evaluating(self.model), torch.no_grad():
            self._raw = self.task.evaluate(self.model)
            self.model.load_state_dict(average_state(self.snapshots))
        try:
            return super().evaluate()
        finally:
            with torch.no_grad():
                self.model.load_state_dict(current)

    def _log(self, record: dict) -> None:
        if record.get("kind") == "eval":
            metric = self.task.metric
            record = {**record, f"raw_{metric}": self._raw.get(metric, record.get(metric)),
                      "averaged": len(self.snapshots)}
        super()._log(record)

    def _state(self) -> dict:
        return {**super()._state(), "average_window": list(self.snapshots)}

    def resume(self) -> None:
        super().resume()
        self.snapshots = list(load_resume(self.run_dir).get("average_window") or [])[-self.window:]
