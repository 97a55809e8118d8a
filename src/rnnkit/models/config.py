"""What every model's configuration shares: ``config.json`` in and out, the cell's description, and the one
initialisation every model runs once its modules are built.

Initialisation order (:func:`initialize`), the same for every model:

1. ``init_range``: the chosen parameters uniform in ``(-r, r)`` (Zaremba et al.); none: PyTorch's defaults stay;
2. the cell-specific initialisation of every recurrent layer: ``forget_bias`` on cells with a forget gate.

Step 2 always follows step 1, so ``--init-range`` can never erase ``--forget-bias``.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Iterable, TypeVar

import torch
from torch import nn

from ..cells.spec import CELL_NAMES, Recurrence, recurrence
from .recurrent import RecurrentLayer, init_forget_bias

C = TypeVar("C", bound="ModelConfig")


class ModelConfig:
    """Base of the model configurations (dataclasses with at least ``cell``, ``init_range`` and ``forget_bias``).

    ``from_dict`` ignores keys it doesn't know, so a run saved by an older or newer rnnkit still loads.
    """

    cell: str
    init_range: float | None
    forget_bias: float | None

    def __post_init__(self) -> None:
        if self.cell not in CELL_NAMES:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {CELL_NAMES}")

    @property
    def recurrence(self) -> Recurrence:
        """The description of :attr:`cell` (what model code asks instead of comparing names)."""
        return recurrence(self.cell)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@torch.no_grad()
def initialize(model: nn.Module, config: ModelConfig, params: Iterable[nn.Parameter] | None = None) -> None:
    """``config.init_range`` on ``params`` (default: all of ``model``'s), then ``config.forget_bias`` on every
    recurrent layer of ``model`` whose cell has a forget gate (see the module's docstring)."""
    if config.init_range is not None:
        for p in model.parameters() if params is None else params:
            nn.init.uniform_(p, -config.init_range, config.init_range)
    if config.forget_bias is not None:
        for layer in model.modules():
            if isinstance(layer, RecurrentLayer):
                init_forget_bias(layer, config.forget_bias)
