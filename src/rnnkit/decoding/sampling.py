"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling."""
from __future__ import annotations

import torch
from torch import Tensor


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to ``-inf`` every logit outside the ``top_k`` largest and outside the smallest set whose
    probability reaches ``top_p`` (Holtzman et al. 2020). ``logits`` (N, V); the largest always survives."""
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum - sorted_logits.softmax(-1) >= top_p      # tokens after the set reached top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """The next token for each row of ``logits`` (N, V); temperature 0 is greedy (argmax), and so is one too small
    for float32 (below 1.2e-38, where every other token's probability is 0 anyway)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax(-1)
    logits = logits.float()
    scaled = (logits - logits.amax(-1, keepdim=True)) / temperature     # <= 0: a tiny temperature gives -inf, not
    probs = filter_logits(scaled, top_k, top_p).softmax(-1)              # inf - inf (the same softmax otherwise)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
