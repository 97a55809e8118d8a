"""Batches of variable-length sequences, for every task that has them (classification, translation): examples
grouped by length so that little of a batch is padding, and the padding itself.

    lengths shuffled by (seed, epoch), then stably sorted     cut into batches          batch order shuffled
    [the film]          2                                     [[the film]               ->  batch 3, batch 1, ...
    [a gem .]           3                                      [a gem .]]   (N=2, T=3, one pad)
    [it is not good]    4                                     [[it is not good]
    [dull , flat , long] 5                                     [dull , flat , long]]  (N=2, T=5, one pad)

Examples of the same length land in a batch in a different mix every epoch; the order of the batches is
random. A length may be a tuple (a translation pair's source and target lengths): pairs then sort by source
length, then target length, and ``max_tokens`` counts both.
"""
from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import Tensor

from .errors import DataError

__all__ = ["bucket_batches", "pad"]


def _tokens(length: int | tuple[int, ...]) -> int:
    return sum(length) if isinstance(length, tuple) else length


def bucket_batches(lengths: Sequence[int | tuple[int, ...]], batch_size: int, *, shuffle: bool = False,
                   seed: int = 0, epoch: int = 1, max_tokens: int | None = None) -> list[list[int]]:
    """Index lists of batches of similar length: at most ``batch_size`` examples each and, with ``max_tokens``,
    at most that many padded tokens. Without ``shuffle`` the batches go shortest first, for evaluation; with it
    the draw depends only on ``(seed, epoch)``, so a resumed run sees the same batches."""
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    order = list(range(len(lengths)))
    rng = random.Random(seed * 1_000_003 + epoch)
    if shuffle:
        rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        size = max(longest, _tokens(lengths[i]))
        if current and (len(current) >= batch_size or (max_tokens is not None and size * (len(current) + 1)
                                                          > max_tokens)):
            batches.append(current)
            current, size = [], _tokens(lengths[i])
        current.append(i)
        longest = size
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def pad(sequences: Sequence[Sequence[int]], value: int, batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """``(ids, lengths)``: ids ``(T, N)`` (``(N, T)`` with ``batch_first``) padded with ``value`` past each
    sequence's end, and the ``(N,)`` lengths; int64."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    if not len(sequences) or (lengths < 1).any():
        raise ValueError("every sequence needs at least one token, and a batch at least one sequence")
    out = torch.full((int(lengths.max()), len(sequences)), value, dtype=torch.long)
    for j, s in enumerate(sequences):
        out[: len(s), j] = torch.as_tensor(s, dtype=torch.long)
    return (out.t().contiguous() if batch_first else out), lengths
