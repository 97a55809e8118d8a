"""Language modelling for the shared trainer: truncated BPTT with the state carried across windows; loading a
trained run (:func:`load_run`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from ..data import BPTTStream, Tokenizer, batchify, read_text, tokenizer_from_dict
from ..data.variable_bptt import VariableBPTTStream
from ..models.awd import activation_regularisation, temporal_activation_regularisation
from ..models.language_model import LanguageModel, LMConfig, detach_state, lm_loss
from ..training import distributed as dist
from ..training.modes import evaluating
from ..training.trainer import perplexity
from .runs import check_vocabulary, load_task_run

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
                 train_source: str | None = None, valid_source: str | None = None, alpha: float = 0.0,
                 beta: float = 0.0, variable_bptt: bool = False, seed: int = 0) -> None:
        self.tokenizer, self.level = tokenizer, level
        self.device = torch.device(device)
        self.bptt, self.sum_over_time = bptt, sum_over_time
        self.alpha, self.beta, self.variable_bptt = alpha, beta, variable_bptt     # AWD: AR, TAR, window lengths
        columns = batchify(train_ids, batch_size, dist.rank(), dist.world_size(), source=train_source)
        self.train = VariableBPTTStream(columns, bptt, seed=seed, source=train_source) if variable_bptt \
            else BPTTStream(columns, bptt, source=train_source)
        valid = batchify(valid_ids, eval_batch_size, source=valid_source, size_name="eval_batch_size")
        self.valid = BPTTStream(valid, bptt, source=valid_source)
        self.data, self.model_config = data or {}, model_config or {}
        self.hidden = None

    # ---------------------------------------------------------------- trainer protocol

    def steps_per_epoch(self) -> int:
        return len(self.train)

    def batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        if start == 0:
            self.hidden = None                 # each epoch starts from h_0 = 0
        if self.variable_bptt:
            self.train.set_epoch(epoch)        # this epoch's window lengths (the same on a resume)
        for x, y in self.train.iter_from(start):
            yield x.to(self.device), y.to(self.device)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, int]:
        x, y = batch
        if self.alpha or self.beta:
            logits, state, (raw, dropped) = model(x, self.hidden, activations=True)
        else:
            logits, state = model(x, self.hidden)
        self.hidden = detach_state(state)      # no gradient crosses a window boundary
        loss = lm_loss(logits, y)
        objective = loss * x.shape[0] if self.sum_over_time else loss
        if self.alpha:
            objective = objective + activation_regularisation(dropped, self.alpha)
        if self.beta:
            objective = objective + temporal_activation_regularisation(raw, self.beta)
        if self.variable_bptt:
            objective = objective * (x.shape[0] / self.bptt)   # AWD scales the learning rate by length / bptt
        return objective, loss.detach(), y.numel()

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_stream(model, self.valid, self.device, self.level)

    def progress(self, loss: float) -> dict[str, str]:
        return {"bpc": f"{loss / LN2:.3f}"} if self.level == "char" else {"ppl": f"{perplexity(loss):.1f}"}

    def run_config(self) -> dict:
        return {"task": self.name, "level": self.level, "model": self.model_config,
                "tokenizer": self.tokenizer.to_dict(), "data": self.data}

    def state_dict(self) -> dict:
        return {"hidden": self.hidden}

    def load_state_dict(self, state: dict) -> None:
        self.hidden = _to_device(state.get("hidden"), self.device)


def _to_device(state, device):
    """A carried state (a tensor, ``(h, c)``, or one per level for AWD's stack) on ``device``."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(_to_device(s, device) for s in state)
    return state.to(device)


@torch.no_grad()
def evaluate_stream(model: LanguageModel, stream: BPTTStream, device: torch.device, level: str) -> dict[str, float]:
    """Mean loss over every target of ``stream``, the state carried window to window; plus ppl or bpc."""
    total, count, state = 0.0, 0, None
    with evaluating(model):
        for x, y in stream:
            logits, state = model(x.to(device), state)
            total += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                       y.to(device).reshape(-1), reduction="sum"))
            count += y.numel()
    loss = total / count
    out = {"loss": loss, "tokens": count}
    if level == "char":
        out["bpc"] = loss / LN2
    else:
        out["ppl"] = perplexity(loss)
    return out


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[LanguageModel, Tokenizer, dict]:
    """``(model in eval mode, tokenizer, config)`` of an ``lm`` run."""
    def build(config: dict, where: Path):
        model_config = LMConfig.from_dict(config["model"])
        tokenizer = tokenizer_from_dict(config["tokenizer"], source=where)
        check_vocabulary(where, "text", tokenizer.vocab_size, model_config.vocab_size)
        return LanguageModel(model_config), (tokenizer,)
    model, (tokenizer,), config = load_task_run(run_dir, "lm", "language-model", build, device)
    return model, tokenizer, config


load_lm = load_run


def evaluate_run(run_dir: str | Path, data: str | Path, bptt: int = 64) -> str:
    """``rnnkit eval`` of an ``lm`` run on the text file ``data``, windows of ``bptt`` with the state carried:
    its loss and perplexity (words) or bits per character, as one line."""
    model, tokenizer, config = load_run(run_dir)
    ids = torch.tensor(tokenizer.encode(read_text(data), source=data), dtype=torch.long)
    stream = BPTTStream(batchify(ids, 1, source=data), bptt, source=data)
    m = evaluate_stream(model, stream, torch.device("cpu"), config["level"])
    extra = f"bits per character {m['bpc']:.4f}" if "bpc" in m else f"perplexity {m['ppl']:.2f}"
    return f"{data}: {m['tokens']:,} tokens, loss {m['loss']:.4f} nats, {extra}"
