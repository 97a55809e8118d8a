"""Many-to-one: a sentence classifier. Embedding → recurrent encoder → pooling → dropout → linear.

::

    tokens (N, T), lengths (N,)
      │ embedding, dropout
      ▼
    LSTM/GRU/RNN, L layers, 1 or 2 directions   states (N, T, D·H), zero past each sentence's end
      │ pooling over the valid steps only:
      │   last       forward: the state at the last valid step; backward: its state at step 0 (= h_n)
      │   max        element-wise max over the valid steps
      │   mean       average over the valid steps
      │   attention  additive attention (Bahdanau) of a learned query over the states, padding masked
      ▼
    dropout → linear → logits (N, C)

Padding never reaches the result: the encoder holds each sentence's state past its end and the pooling
reads valid steps only, so a sentence gives the same logits alone or in a padded batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import AdditiveAttention
from .awd import embedding_dropout
from .config import ModelConfig, initialize
from .recurrent import make_recurrent

POOLINGS = ("last", "max", "mean", "attention")


@dataclass
class ClassifierConfig(ModelConfig):
    """Everything needed to rebuild a :class:`Classifier`; saved in a run's ``config.json``."""

    vocab_size: int
    num_classes: int
    cell: str = "lstm"
    embed_size: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.0                 # between layers and before the output layer
    embed_dropout: float | None = None   # on the embeddings; None: ``dropout``
    attention_size: int | None = None    # attention pooling: size of the additive score's hidden layer (D·H)
    pad_id: int = 0
    init_range: float | None = None      # uniform(-r, r) for every parameter; None: PyTorch's initialisation
    forget_bias: float | None = None
    engine: str = "auto"
    # regularisers (all off by default): whole words dropped (rows of the embedding matrix, AWD's dropoute), and
    # the recurrent layer's own (rnnkit.layers.regularisers, all in the compiled loop)
    word_dropout: float = 0.0
    weight_drop: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    layer_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
        if self.num_classes < 2:
            raise ValueError(f"a classifier needs at least two classes, got {self.num_classes}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is outside the vocabulary of size {self.vocab_size}")

    def regularisers(self) -> dict:
        """The recurrent layer's keyword-only regularisers (only those that are on)."""
        on = dict(weight_drop=self.weight_drop, recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout,
                  layer_norm=self.layer_norm)
        return {k: v for k, v in on.items() if v}

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def feature_size(self) -> int:
        """Size of the pooled sentence vector: ``D·H``."""
        return self.directions * self.hidden_size


def valid_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(N, T)`` bool, ``True`` at the valid steps of each sequence."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Classifier(nn.Module):
    """``logits = model(tokens (N, T), lengths (N,))`` → ``(N, C)``; :meth:`explain` also gives the attention."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size, padding_idx=c.pad_id)
        self.cell = c.recurrence
        self.rnn = make_recurrent(self.cell, c.embed_size, c.hidden_size, c.num_layers, c.dropout,
                                  bidirectional=c.bidirectional, engine=c.engine, batch_first=True,
                                  **c.regularisers())
        if c.pooling == "attention":
            a = c.attention_size or c.feature_size
            self.query = nn.Parameter(torch.empty(a))
            self.attention = AdditiveAttention(a, c.feature_size, a)
        self.output = nn.Linear(c.feature_size, c.num_classes)
        initialize(self, c)
        if c.init_range is None and c.pooling == "attention":
            nn.init.normal_(self.query, std=a ** -0.5)
        with torch.no_grad():
            self.embedding.weight[c.pad_id].zero_()

    # ------------------------------------------------------------------ parts

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(states (N, T, D·H), h_n (layers·D, N, H))``; states are zero past each sequence's end."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (N, T), got shape {tuple(tokens.shape)}")
        c = self.config
        emb = embedding_dropout(self.embedding, tokens, c.word_dropout, self.training)
        p = c.dropout if c.embed_dropout is None else c.embed_dropout
        emb = F.dropout(emb, p, self.training)
        states, final = self.rnn(emb, lengths=lengths)
        h_n, _ = self.cell.unpack(final)
        return states, h_n

    def pool(self, states: Tensor, h_n: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """The sentence vector ``(N, D·H)`` and, for attention pooling, the weights ``(N, T)``."""
        c = self.config
        mask = valid_mask(lengths.to(states.device), states.shape[1])
        if c.pooling == "last":
            # h_n's last layer: forward state at each sequence's last valid step; backward state at step 0
            return torch.cat(list(h_n[-c.directions:]), dim=-1), None
        if c.pooling == "max":
            return states.masked_fill(~mask.unsqueeze(2), float("-inf")).amax(dim=1), None
        if c.pooling == "mean":
            summed = (states * mask.unsqueeze(2)).sum(dim=1)
            return summed / lengths.to(states.device, states.dtype).unsqueeze(1), None
        query = self.query.unsqueeze(0).expand(states.shape[0], -1)
        return self.attention(query, states, mask)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.explain(tokens, lengths)[0]

    def explain(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(logits (N, C), attention weights (N, T) or None)``."""
        states, h_n = self.encode(tokens, lengths)
        pooled, weights = self.pool(states, h_n, lengths)
        pooled = F.dropout(pooled, self.config.dropout, self.training)
        return self.output(pooled), weights
