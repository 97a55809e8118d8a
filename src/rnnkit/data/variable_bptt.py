"""AWD-LSTM's variable-length BPTT windows (Merity et al. 2017, section 4.1).

Each window's length is ``bptt`` with probability 0.95, else ``bptt / 2``, then drawn from ``N(that, 5)``, at
least 5 and at most ``bptt + 20`` steps, so that over the epochs every token starts a window somewhere. The
lengths of an epoch are drawn from ``random.Random`` seeded by ``(seed, epoch)``: the same run cuts the same
windows, and a resumed run continues at the same window.
"""
from __future__ import annotations

import random

import torch

from .batching import BPTTStream
from .errors import Source


def variable_bptt(bptt: int, rng: random.Random | None = None, p_full: float = 0.95, std: float = 5.0,
                  minimum: int = 5) -> int:
    """One window length of AWD's variable-length BPTT (before the ``bptt + 20`` cap)."""
    rng = rng or random
    base = bptt if rng.random() < p_full else bptt / 2
    return max(minimum, int(rng.gauss(base, std)))


class VariableBPTTStream(BPTTStream):
    """:class:`BPTTStream` with AWD's variable window lengths; :meth:`set_epoch` draws an epoch's windows."""

    def __init__(self, data: torch.Tensor, bptt: int, seed: int = 0, source: Source = None) -> None:
        super().__init__(data, bptt, source=source)
        self.seed = seed
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        rng = random.Random(f"{self.seed}/{epoch}")
        rows, start, spans = self.data.size(0) - 1, 0, []
        while start < rows:
            n = min(variable_bptt(self.bptt, rng), self.bptt + 20, rows - start)
            spans.append((start, n))
            start += n
        self.spans = spans

    def __len__(self) -> int:
        return len(self.spans)

    def window(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        start, n = self.spans[index]
        return self.data[start:start + n], self.data[start + 1:start + 1 + n]
