"""The language model: embedding → stacked recurrent layers → dropout → linear decoder (Zaremba et al. 2014)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .awd import AWDStack, embedding_dropout, locked_dropout
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
    # AWD-LSTM (Merity et al. 2017; rnnkit.models.awd) and the layers' regularisers, all off by default
    awd: bool = False             # one layer per level, locked dropout on the embeddings, between layers, outputs
    last_hidden_size: int | None = None  # AWD: the last layer's size (the embedding size for tied weights)
    word_dropout: float = 0.0     # whole words: rows of the embedding matrix (AWD's dropoute)
    layer_dropout: float = 0.0    # locked (variational) dropout between layers (AWD's dropouth)
    weight_drop: float = 0.0      # DropConnect on weight_hh (AWD's wdrop)
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    layer_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tie_weights and self.embed_size != self.output_size:
            size = "last_hidden_size" if self.awd and self.last_hidden_size else "hidden_size"
            raise ValueError(f"tie_weights needs embed_size == {size} (the decoder reads the last layer's output), "
                             f"got {self.embed_size} and {self.output_size}")

    @property
    def output_size(self) -> int:
        """The size of the last layer's output (what the decoder reads)."""
        return (self.last_hidden_size or self.hidden_size) if self.awd else self.hidden_size

    def regularisers(self) -> dict:
        return dict(weight_drop=self.weight_drop, recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout,
                    layer_norm=self.layer_norm)


class LanguageModel(nn.Module):
    """Predicts token ``t+1`` from tokens ``..t``: ``logits, state = model(tokens (T, N), state)``."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size)
        if c.awd:
            sizes = [c.embed_size] + [c.hidden_size] * (c.num_layers - 1) + [c.output_size]
            self.rnn = AWDStack(c.recurrence, sizes, c.layer_dropout, engine=c.engine, **c.regularisers())
        else:
            extra = c.regularisers()
            between = c.dropout                                          # between layers: torch's dropout,
            if c.layer_dropout and c.num_layers > 1:                     # or locked dropout in its place
                extra["variational_dropout"], between = c.layer_dropout, 0.0
            self.rnn = make_recurrent(c.recurrence, c.embed_size, c.hidden_size, c.num_layers, between,
                                      engine=c.engine, **extra)
        self.decoder = nn.Linear(c.output_size, c.vocab_size)
        initialize(self, c)
        if c.awd and c.init_range is None:
            awd_initialize(self)
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state=None, activations: bool = False):
        """``tokens`` (T, N) int64 → ``logits`` (T, N, V) and the state after the last step; with
        ``activations``, third the last layer's output before and after its dropout (for AR and TAR)."""
        return self._run(tokens, state, self.rnn, activations)

    @torch.no_grad()
    def step(self, token: Tensor, state=None):
        """One generation step: ``token`` (N,) → logits (N, V) and the new state, every layer advanced in one
        call (``rnn.step``: the compiled stepper where it serves)."""
        return self._run(token, state, self.rnn.step)

    def _run(self, tokens: Tensor, state, recurrence, activations: bool = False):
        c = self.config
        emb = embedding_dropout(self.embedding, tokens, c.word_dropout, self.training) if c.word_dropout \
            else self.embedding(tokens)
        p_emb = c.dropout if c.embed_dropout is None else c.embed_dropout
        drop = locked_dropout if c.awd else F.dropout
        emb = drop(emb, p_emb, self.training)
        raw, state = recurrence(emb, state)
        out = drop(raw, c.dropout, self.training)
        if activations:
            return self.decoder(out), state, (raw, out)
        return self.decoder(out), state


AWD_EMBEDDING_RANGE = 0.1


@torch.no_grad()
def awd_initialize(model: LanguageModel) -> None:
    """AWD-LSTM's initialisation (salesforce/awd-lstm-lm, ``RNNModel.init_weights``), used for ``awd`` models
    without an ``init_range``: the embedding (the decoder too when tied) uniform in (-0.1, 0.1), the decoder's
    bias zero, the recurrent layers PyTorch's (-1/sqrt(H), 1/sqrt(H)). torch's own embedding init, N(0, 1),
    makes a tied decoder's first logits about 10 nats wide: the first few hundred steps then only undo it."""
    nn.init.uniform_(model.embedding.weight, -AWD_EMBEDDING_RANGE, AWD_EMBEDDING_RANGE)
    nn.init.zeros_(model.decoder.bias)


def detach_state(state):
    """Cut the graph between TBPTT windows: the next window's initial state is a leaf."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(detach_state(s) for s in state)        # (h, c), or one state per level (AWD)
    return state.detach()


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy per token (nats)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
