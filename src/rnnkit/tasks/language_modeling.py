"""Language modelling for the shared trainer: truncated BPTT with the state carried across windows."""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import Tensor, nn

from ..data import BPTTStream, Tokenizer, batchify
from ..models.language_model import LanguageModel, detach_state, lm_loss
from ..training import distributed as dist

LN2 = math.log(2)


class LanguageModelTask:
    """Train on ``train_ids`` cut into ``batch_size`` columns and windows of ``bptt`` steps.

    The loss reported is the mean cross-entropy per token (nats); with ``sum_over_time`` the objective is that
    times the window length — the loss summed over the unrolled steps and averaged over the batch, as Zaremba
    et al. trained (their learning rate of 1 assumes it). Validation runs over every target token of the
    validation text with the state carried from window to window, in evaluation mode.
    """

    name = "lm"
    metric = "loss"
    higher_is_better = False

    def __init__(self, tokenizer: Tokenizer, level: str, train_ids: Tensor, valid_ids: Tensor, *,
                 batch_size: int, bptt: int, eval_batch_size: int = 1, sum_over_time: bool = False,
                 device: torch.device | str = "cpu", data: dict | None = None, model_config: dict | None = None,
                 train_source: str | None = None, valid_source: str | None = None) -> None:
        self.tokenizer, self.level = tokenizer, level
        self.device = torch.device(device)
        self.bptt, self.sum_over_time = bptt, sum_over_time
        self.train = BPTTStream(batchify(train_ids, batch_size, dist.rank(), dist.world_size(), source=train_source),
                                bptt, source=train_source)
        self.valid = BPTTStream(batchify(valid_ids, eval_batch_size, source=valid_source), bptt,
                                source=valid_source)
        self.data, self.model_config = data or {}, model_config or {}
        self.hidden = None

    # ---------------------------------------------------------------- trainer protocol

    def steps_per_epoch(self) -> int:
        return len(self.train)

    def batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        if start == 0:
            self.hidden = None                 # each epoch starts from h_0 = 0
        for x, y in self.train.iter_from(start):
            yield x.to(self.device), y.to(self.device)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, int]:
        x, y = batch
        logits, state = model(x, self.hidden)
        self.hidden = detach_state(state)      # no gradient crosses a window boundary
        loss = lm_loss(logits, y)
        return (loss * x.shape[0] if self.sum_over_time else loss), loss.detach(), y.numel()

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_stream(model, self.valid, self.device, self.level)

    def progress(self, loss: float) -> dict[str, str]:
        return {"bpc": f"{loss / LN2:.3f}"} if self.level == "char" else {"ppl": f"{math.exp(min(loss, 50)):.1f}"}

    def run_config(self) -> dict:
        return {"task": self.name, "level": self.level, "model": self.model_config,
                "tokenizer": self.tokenizer.to_dict(), "data": self.data}

    def state_dict(self) -> dict:
        return {"hidden": self.hidden}

    def load_state_dict(self, state: dict) -> None:
        h = state.get("hidden")
        self.hidden = None if h is None else (tuple(t.to(self.device) for t in h) if isinstance(h, (tuple, list))
                                              else h.to(self.device))


@torch.no_grad()
def evaluate_stream(model: LanguageModel, stream: BPTTStream, device: torch.device, level: str) -> dict[str, float]:
    """Mean loss over every target of ``stream``, the state carried window to window; plus ppl or bpc."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in stream:
        logits, state = model(x.to(device), state)
        total += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1),
                                                   reduction="sum"))
        count += y.numel()
    model.train(was_training)
    loss = total / count
    out = {"loss": loss, "tokens": count}
    if level == "char":
        out["bpc"] = loss / LN2
    else:
        out["ppl"] = math.exp(min(loss, 50.0))
    return out
