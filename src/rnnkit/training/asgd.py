"""NT-ASGD (Merity et al. 2017): SGD until validation stops improving, then averaged SGD.

The averaging is torch's (:class:`torch.optim.swa_utils.AveragedModel`, an equal-weight running mean of the
iterates taken after each step once triggered); this module only decides when to start. "Non-monotonically
triggered": averaging starts at the first validation that is worse than the best of those more than
``nonmono`` checks before it. Evaluate and save ``averaged.module`` once :attr:`NTASGD.averaging` is on.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from .checkpoint import load_resume
from .trainer import Trainer


class NTASGD:
    """``step()`` after each optimiser step, ``validated(loss)`` after each validation; ``model_for_eval()``
    is the averaged model once triggered, else the model itself."""

    def __init__(self, model: nn.Module, nonmono: int = 5) -> None:
        self.model, self.nonmono = model, nonmono
        self.history: list[float] = []
        self.averaged: AveragedModel | None = None

    @property
    def averaging(self) -> bool:
        return self.averaged is not None

    def validated(self, loss: float) -> bool:
        """Record a validation loss; start averaging when it is the trigger. Returns whether averaging is on."""
        if self.averaged is None and len(self.history) > self.nonmono \
                and loss > min(self.history[:-self.nonmono]):
            self.averaged = AveragedModel(self.model, use_buffers=True)
        self.history.append(loss)
        return self.averaging

    def step(self) -> None:
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)

    def model_for_eval(self) -> nn.Module:
        return self.model if self.averaged is None else self.averaged.module


class AveragingTrainer(Trainer):
    """The shared :class:`~rnnkit.training.trainer.Trainer` with NT-ASGD: after each optimiser step the average is
    updated (once triggered); each evaluation runs, and a better model is saved, with the averaged weights; the
    trigger looks at every validation; the average and the trigger's history are part of the resume state."""

    def __init__(self, *args, nonmono: int = 5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ntasgd = NTASGD(self.model, nonmono)

    def _update(self, objective):
        norm = super()._update(objective)
        self.ntasgd.step()
        return norm

    def evaluate(self) -> dict[str, float]:
        averaged = self.ntasgd.averaged
        if averaged is None:
            metrics = super().evaluate()
        else:                                      # the averaged weights in the model for evaluating and saving
            params = list(self.model.parameters())
            current = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, a in zip(params, averaged.module.parameters()):
                    p.copy_(a)
            try:
                metrics = super().evaluate()
            finally:
                with torch.no_grad():
                    for p, c in zip(params, current):
                        p.copy_(c)
        if not self.ntasgd.averaging and self.ntasgd.validated(float(metrics[self.task.metric])):
            self._log({"kind": "asgd", "note": "validation stopped improving: averaging from here"})
        elif self.ntasgd.averaging and averaged is not None:
            self.ntasgd.history.append(float(metrics[self.task.metric]))
        return metrics

    def _state(self) -> dict:
        state = super()._state()
        averaged = self.ntasgd.averaged
        state["ntasgd"] = {"history": list(self.ntasgd.history),
                           "averaged": None if averaged is None else averaged.state_dict()}
        return state

    def resume(self) -> None:
        super().resume()
        saved = load_resume(self.run_dir).get("ntasgd") or {}
        self.ntasgd.history = [float(v) for v in saved.get("history", [])]
        if saved.get("averaged") is not None:
            self.ntasgd.averaged = AveragedModel(self.model, use_buffers=True)
            self.ntasgd.averaged.load_state_dict(saved["averaged"])
