"""``distributed.share``: each DDP rank's part of an epoch, the same size on every rank."""
from __future__ import annotations

import torch

from rnnkit.training import distributed as dist


def test_share_gives_every_rank_as_many_items(monkeypatch):
    monkeypatch.setattr(dist, "world_size", lambda: 3)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(dist, "rank", lambda rank=rank: rank)
        parts.append(dist.share(list(range(10))))
    assert parts == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]                  # item 9 waits for another epoch's order
    monkeypatch.setattr(dist, "rank", lambda: 1)
    assert dist.share(torch.arange(10, 20)).tolist() == [11, 14, 17]    # tensors alike (an image order)


def test_share_is_everything_without_ddp():
    items = [[3, 1], [0], [2]]
    assert dist.share(items) is items
