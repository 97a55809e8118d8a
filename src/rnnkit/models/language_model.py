"""The language model: embedding → stacked recurrent layers → dropout → linear decoder (Zaremba et al. 2014)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig, initialize
from .recurrent import make_recurrent


@dataclass
class LMConfig(ModelConfig):
    """Everything needed to rebuild a :class:`LanguageModel`; saved in a run's ``config.json``."""

    vocab_size: int
    cell: str = "lstm"
    embed_size: int = 256
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.0          # on the embeddings, between layers and on the outputs (Zaremba et al.)
    embed_dropout: float | None = None   # overrides ``dropout`` on the embeddings when set
    tie_weights: bool = False     # decoder shares the embedding matrix (Press & Wolf 2017; needs embed == hidden)
    init_range: float | None = None      # uniform(-r, r) for every parameter, as Zaremba et al.; None: PyTorch's
    forget_bias: float | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise ValueError(f"tie_weights needs embed_size == hidden_size, got {self.embed_size} and "
                             f"{self.hidden_size}")


class LanguageModel(nn.Module):
    """Predicts token ``t+1`` from tokens ``..t``: ``logits, state = model(tokens (T, N), state)``."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size)
        self.rnn = make_recurrent(c.recurrence, c.embed_size, c.hidden_size, c.num_layers, c.dropout,
                                  engine=c.engine)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        initialize(self, c)
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state=None):
        """``tokens`` (T, N) int64 → ``logits`` (T, N, V) and the state after the last step."""
        return self._run(tokens, state, self.rnn)

    @torch.no_grad()
    def step(self, token: Tensor, state=None):
        """One generation step: ``token`` (N,) → logits (N, V) and the new state, every layer advanced in one
        call (``rnn.step``: the compiled stepper where it serves)."""
        return self._run(token, state, self.rnn.step)

    def _run(self, tokens: Tensor, state, recurrence):
        c = self.config
        emb = self.embedding(tokens)
        p_emb = c.dropout if c.embed_dropout is None else c.embed_dropout
        emb = F.dropout(emb, p_emb, self.training)
        out, state = recurrence(emb, state)
        out = F.dropout(out, c.dropout, self.training)
        return self.decoder(out), state


def detach_state(state):
    """Cut the graph between TBPTT windows: the next window's initial state is a leaf."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy per token (nats)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
