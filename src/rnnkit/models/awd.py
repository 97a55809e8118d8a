"""The pieces of the AWD-LSTM recipe (Merity, Keskar & Socher 2017, salesforce/awd-lstm-lm) that sit in the model.

* :func:`embedding_dropout` drops whole words: rows of the embedding matrix, one mask per forward call, the
  kept rows scaled by ``1/(1-p)`` (every occurrence of a dropped word in the batch becomes zero).
* :class:`LockedDropout` drops the same units at every time step of a sequence (the "variational" or locked
  mask): on the embedding output, between layers and on the final output. Between the layers of an rnnkit
  stack the layer's own ``variational_dropout`` does it, and ``weight_drop`` is DropConnect on ``weight_hh``.
* :func:`activation_regularisation` (AR) and :func:`temporal_activation_regularisation` (TAR)::

      AR  = alpha * mean(h_t ** 2)                  over the last layer's dropped outputs
      TAR = beta  * mean((h_t - h_{t-1}) ** 2)      over the last layer's outputs before dropout

* :func:`variable_bptt` (:mod:`rnnkit.data.variable_bptt`) draws each window's length: ``bptt`` with probability
  0.95, else ``bptt / 2``, then ``N(that, 5)``, at least 5 steps; the task scales the window's objective by
  ``length / bptt`` (AWD scales the learning rate: the same SGD step).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.variable_bptt import variable_bptt  # noqa: F401  (the window lengths, beside the rest of the recipe)
from ..layers.regularisers import dropout_mask


def embedding_dropout(embedding: nn.Embedding, words: Tensor, p: float, training: bool) -> Tensor:
    """``embedding(words)`` with whole rows of the embedding matrix dropped with probability ``p`` (training)."""
    weight = embedding.weight
    if training and p > 0:
        weight = weight * dropout_mask((weight.shape[0], 1), p, weight)
    return F.embedding(words, weight, embedding.padding_idx, embedding.max_norm, embedding.norm_type,
                       embedding.scale_grad_by_freq, embedding.sparse)


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """One mask per sequence and unit for ``x`` (T, N, F), shared over time; (N, F) (one step): plain dropout."""
    if not training or p == 0:
        return x
    if x.dim() == 2:
        return F.dropout(x, p, True)
    return x * dropout_mask((1, x.shape[1], x.shape[2]), p, x)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence and unit, shared over time; ``x`` is (T, N, F) (time-major)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"LockedDropout: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return locked_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def activation_regularisation(dropped_output: Tensor, alpha: float) -> Tensor:
    """AR: ``alpha * mean(h ** 2)`` of the last layer's output after dropout."""
    return alpha * dropped_output.pow(2).mean()


def temporal_activation_regularisation(raw_output: Tensor, beta: float) -> Tensor:
    """TAR: ``beta * mean((h_t - h_{t-1}) ** 2)`` of the last layer's output before dropout, (T, N, H)."""
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()




class AWDStack(nn.Module):
    """AWD-LSTM's recurrent part: one rnnkit layer per level (so the last may be smaller, e.g. the embedding size
    for tied weights: 400 → 1150 → 1150 → 400), locked dropout ``dropout_h`` between them, each with the
    layer's own regularisers (``weight_drop`` and the others of :mod:`rnnkit.layers.regularisers`).

    ``forward(x (T, N, E), state) -> (output (T, N, last), state)`` and ``step(x (N, E), state)`` as an rnnkit
    layer; the state is a tuple with one layer's state per level.
    """

    def __init__(self, cell, sizes: list[int], dropout_h: float = 0.0, engine: str = "auto",
                 forget_bias: float | None = None, **regularisers) -> None:
        super().__init__()
        from .recurrent import make_recurrent
        self.layers = nn.ModuleList(make_recurrent(cell, sizes[k], sizes[k + 1], 1, engine=engine,
                                                   forget_bias=forget_bias, **regularisers)
                                    for k in range(len(sizes) - 1))
        self.locked = LockedDropout(dropout_h)

    def forward(self, x: Tensor, state=None):
        states = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.locked(x)
            x, s = layer(x, None if state is None else state[k])
            states.append(s)
        return x, tuple(states)

    def step(self, x: Tensor, state=None):
        states = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.locked(x.unsqueeze(0))[0]
            x, s = layer.step(x, None if state is None else state[k])
            states.append(s)
        return x, tuple(states)
