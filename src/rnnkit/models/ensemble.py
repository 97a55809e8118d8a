"""An ensemble of sentence classifiers: the mean of the members' class probabilities.

::

    p(c | x) = 1/K · Σ_k softmax(member_k(x))_c

:meth:`EnsembleClassifier.explain` returns ``log p`` as its "logits", so ``softmax`` of them gives back the mean
probabilities exactly (they sum to one) and every caller of a :class:`~rnnkit.models.classifier.Classifier`
(training's evaluation, ``rnnkit eval``, ``rnnkit predict``) uses an ensemble unchanged. With attention pooling
the attention weights are the members' mean (still a distribution over the tokens).

The members share the vocabulary, the classes and the architecture (one :class:`ClassifierConfig`); they differ
in their initialisation and data order (each is trained with its own seed).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .classifier import Classifier, ClassifierConfig


class EnsembleClassifier(nn.Module):
    """``K`` :class:`Classifier` members; ``model(tokens, lengths)`` → ``log`` of their mean probabilities."""

    def __init__(self, members: Sequence[Classifier]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].config
        for m in members[1:]:
            c = m.config
            if (c.vocab_size, c.num_classes, c.pad_id) != (first.vocab_size, first.num_classes, first.pad_id):
                raise ValueError("ensemble members must share the vocabulary, the classes and the padding id")
        self.members = nn.ModuleList(members)

    @classmethod
    def build(cls, config: ClassifierConfig, size: int) -> "EnsembleClassifier":
        """``size`` fresh members of the same configuration (each initialised from the current RNG state)."""
        return cls([Classifier(config) for _ in range(size)])

    @property
    def config(self) -> ClassifierConfig:
        """The members' configuration (the first member's)."""
        return self.members[0].config

    def __len__(self) -> int:
        return len(self.members)

    def member_probabilities(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """``(K, N, C)``: each member's class probabilities."""
        return torch.stack([torch.softmax(m(tokens, lengths).float(), dim=-1) for m in self.members])

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.explain(tokens, lengths)[0]

    def explain(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(log of the mean probabilities (N, C), mean attention weights (N, T) or None)``."""
        logs, weights = [], []
        for m in self.members:
            logits, w = m.explain(tokens, lengths)
            logs.append(torch.log_softmax(logits.float(), dim=-1))
            weights.append(w)
        log_mean = torch.logsumexp(torch.stack(logs), dim=0) - math.log(len(logs))
        mean_w = None if any(w is None for w in weights) else torch.stack(weights).mean(0)
        return log_mean, mean_w
