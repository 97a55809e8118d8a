"""Evaluation mode for a block of code, with the caller's mode always given back."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` runs the block with ``model.eval()`` (no dropout, batch-norm statistics
    fixed) and restores the training mode the model had before, even when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
