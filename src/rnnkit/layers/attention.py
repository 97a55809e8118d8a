"""Attention over all encoder states: Bahdanau's additive score and Luong's dot and general scores.

Every variant maps a query and the encoder states to weights over the source positions and their weighted
sum, the context::

    e_s = score(q, k_s)            additive: v^T tanh(q W_q + k_s W_k)      (Bahdanau et al. 2014)
                                   dot:      q · k_s                        (Luong et al. 2015)
                                   general:  q W k_s^T                      (Luong et al. 2015)
    a   = softmax(e)               padded positions get e_s = -inf, so a_s = 0 there
    c   = sum_s a_s k_s

Shapes (batch first): ``query`` (N, Q), ``keys`` (N, S, K), ``mask`` (N, S) bool, ``True`` at real positions.
Returns ``(context (N, K), weights (N, S))``. A row whose mask has no real position gets zero weights and a zero
context (softmax over no position is undefined; ``torch.nn.MultiheadAttention`` gives NaN there).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

SCORES = ("bahdanau", "luong-dot", "luong-general")


class Attention(nn.Module):
    """Scores, masking and the weighted sum; subclasses give :meth:`score`.

    ``precompute(keys)`` does the work that depends on the keys alone (once per source sentence); pass its
    result as ``cache`` at every decoder step.
    """

    def precompute(self, keys: Tensor) -> Tensor:
        return keys

    def score(self, query: Tensor, cache: Tensor) -> Tensor:          # (N, Q), precomputed keys -> (N, S)
        raise NotImplementedError

    sizes: tuple[int, int] | None = None          # (Q, K) the learned projections take; None: any

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None,
                cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        if keys.dim() != 3 or query.dim() != 2 or query.shape[0] != keys.shape[0]:
            raise ValueError(f"{name} expects query (N, Q) and keys (N, S, K); got "
                             f"{tuple(query.shape)} and {tuple(keys.shape)}")
        if self.sizes is not None and (query.shape[1], keys.shape[2]) != self.sizes:
            raise ValueError(f"{name} was built for queries of {self.sizes[0]} and keys of {self.sizes[1]} "
                             f"features; got query {tuple(query.shape)} and keys {tuple(keys.shape)}")
        scores = self.score(query, self.precompute(keys) if cache is None else cache)
        if mask is not None:
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
                got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
                raise TypeError(f"attention mask must be a bool tensor, True at real positions; got {got} "
                                f"(e.g. mask = lengths_mask != 0, or mask.bool())")
            if mask.shape != scores.shape:
                raise ValueError(f"attention mask must have shape {tuple(scores.shape)}, got {tuple(mask.shape)}")
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:                      # a row with no real position: zero weights, not NaN
            weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
        return context, weights


class AdditiveAttention(Attention):
    """Bahdanau's score ``v^T tanh(q W_q + k W_k + b)``."""

    def __init__(self, query_size: int, key_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or query_size
        self.sizes = (query_size, key_size)
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.key_proj = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def precompute(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)                                      # k_s W_k + b, (N, S, A)

    def score(self, query: Tensor, cache: Tensor) -> Tensor:
        return self.v(torch.tanh(self.query_proj(query).unsqueeze(1) + cache)).squeeze(-1)


class DotAttention(Attention):
    """Luong's dot score ``q · k`` (query and key sizes must match)."""

    def score(self, query: Tensor, cache: Tensor) -> Tensor:
        if query.shape[-1] != cache.shape[-1]:
            raise ValueError(f"dot attention needs equal query and key sizes, got {query.shape[-1]} and "
                             f"{cache.shape[-1]}; use luong-general or bahdanau")
        return torch.bmm(query.unsqueeze(1), cache.transpose(1, 2)).squeeze(1)   # (N,1,Q)x(N,Q,S), faster on CPU


class GeneralAttention(DotAttention):
    """Luong's general score ``q W k^T``: the dot score against the keys mapped by ``W``."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.sizes = (query_size, key_size)
        self.weight = nn.Linear(key_size, query_size, bias=False)

    def precompute(self, keys: Tensor) -> Tensor:
        return self.weight(keys)                                        # k_s W^T, (N, S, Q)


def make_attention(kind: str, query_size: int, key_size: int, attention_size: int | None = None) -> Attention:
    """``bahdanau`` | ``luong-dot`` | ``luong-general``."""
    if kind == "bahdanau":
        return AdditiveAttention(query_size, key_size, attention_size)
    if kind == "luong-dot":
        return DotAttention()
    if kind == "luong-general":
        return GeneralAttention(query_size, key_size)
    raise ValueError(f"unknown attention {kind!r}; expected one of {SCORES}")
