"""Truncated-BPTT batching of one token stream, as in PyTorch's word_language_model.

The stream is cut into ``batch_size * world_size`` equal columns (the remainder
is dropped); each column is read top to bottom, and a BPTT window is ``bptt``
consecutive rows, with targets one row further down. Stream ``a b c ... x``
(24 tokens), ``batch_size=4``, ``bptt=2``::

    batchify(ids, batch_size=4)      BPTTStream(data, bptt=2)

          col 0 1 2 3
    row 0 [ a g m s ]                window 0: inputs rows 0-1, targets rows 1-2
    row 1 [ b h n t ]                window 1: inputs rows 2-3, targets rows 3-4
    row 2 [ c i o u ]                window 2: inputs row  4,   targets row  5
    row 3 [ d j p v ]                          (the last window is shorter)
    row 4 [ e k q w ]
    row 5 [ f l r x ]                window 0 = ( [[a g m s],    [[b h n t],
                                                  [b h n t]],    [c i o u]] )
    (column j holds the j-th chunk of the stream, read downwards)

Each column carries its hidden state from one window to the next, so the model
sees every column as one long sequence. With DDP (``world_size`` W), the stream
is cut into ``batch_size * W`` columns and rank r takes columns
``r*batch_size .. (r+1)*batch_size - 1``; every rank gets the same number of
rows, hence the same number of windows, and no token is read twice.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from .errors import DataError, Source

__all__ = ["batchify", "BPTTStream"]

MIN_ROWS = 2  # one input row and one target row


def batchify(
    ids: torch.Tensor | Sequence[int],
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    source: Source = None,
    size_name: str = "batch_size",
) -> torch.Tensor:
    """Cut a 1-D id stream into columns; return this rank's ``(rows, batch_size)`` block. ``size_name`` names
    the batch size in messages (``eval_batch_size`` for a validation stream)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1:
        raise DataError(f"batchify expects a 1-D token stream, got shape {tuple(ids.shape)}", source)
    if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise DataError(
            f"need batch_size >= 1 and 0 <= rank < world_size, got batch_size={batch_size}, "
            f"rank={rank}, world_size={world_size}",
            source,
        )
    columns = batch_size * world_size
    rows = ids.numel() // columns
    if rows < MIN_ROWS:
        raise DataError(
            f"corpus too short: {size_name} {batch_size} x world_size {world_size} = {columns} "
            f"columns need at least {MIN_ROWS * columns:,} tokens ({MIN_ROWS} per column), "
            f"but there are only {ids.numel():,}; use a smaller {size_name} or more text",
            source,
        )
    data = ids[: rows * columns].view(columns, rows).t()
    return data[:, rank * batch_size : (rank + 1) * batch_size].contiguous()


class BPTTStream:
    """Windows ``(inputs, targets)`` of shape ``(T, B)`` over batchified data, T <= bptt.

    ``targets`` is ``inputs`` shifted one row down; the last window may be shorter.
    ``iter_from(k)`` restarts at window ``k``, for exact resume mid-epoch.
    """

    def __init__(self, data: torch.Tensor, bptt: int, source: Source = None) -> None:
        if data.dim() != 2:
            raise DataError(f"BPTTStream expects (rows, batch) data, got shape {tuple(data.shape)}", source)
        if bptt < 1:
            raise DataError(f"bptt must be >= 1, got {bptt}", source)
        if data.size(0) < MIN_ROWS:
            raise DataError(
                f"corpus too short: need at least {MIN_ROWS} rows ({MIN_ROWS * data.size(1):,} tokens "
                f"for batch size {data.size(1)}), got {data.size(0)}",
                source,
            )
        self.data = data
        self.bptt = bptt

    def __len__(self) -> int:
        """Number of windows: ``ceil((rows - 1) / bptt)``."""
        return math.ceil((self.data.size(0) - 1) / self.bptt)

    def window(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``index`` as ``(inputs, targets)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        start = index * self.bptt
        length = min(self.bptt, self.data.size(0) - 1 - start)
        return self.data[start : start + length], self.data[start + 1 : start + 1 + length]

    def iter_from(self, position: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate windows ``position, position + 1, ...`` (``position == len`` yields nothing)."""
        if not 0 <= position <= len(self):
            raise ValueError(f"resume position {position} outside 0..{len(self)}")
        return (self.window(i) for i in range(position, len(self)))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def __repr__(self) -> str:
        rows, batch = self.data.shape
        return f"BPTTStream(rows={rows}, batch={batch}, bptt={self.bptt}, windows={len(self)})"
