"""What every model's configuration shares: ``config.json`` in and out, the cell's description, and the one
initialisation every model runs once its modules are built.

Initialisation order (:func:`initialize`), the same for every model:

1. ``init_range``: the chosen parameters uniform in ``(-r, r)`` (Zaremba et al.); none: PyTorch's defaults stay;
2. the cell-specific initialisation of every recurrent layer: ``forget_bias`` on cells with a forget gate.

Step 2 always follows step 1, so ``--init-range`` can never erase ``--forget-bias``.
"""
from __future__ import annotations

import math
import numbers
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
        for f in fields(self):                     # a damaged config.json: wrong types, sizes, rates
            _check_field(f.name, str(f.type), getattr(self, f.name))
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


_TYPES = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v),
          "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str)}


def _check_field(name: str, annotation: str, value: Any) -> None:
    """``value`` fits the field's annotation (where it is made of int, float, bool, str and None); sizes and
    layer counts are positive, dropout rates in [0, 1)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return
    checks = [_TYPES[k] for k in kinds if k in _TYPES]
    if len(checks) == len([k for k in kinds if k != "None"]) and not any(ok(value) for ok in checks):
        raise ValueError(f"{name} must be {' or '.join(kinds)}, got {value!r}")
    if not _TYPES["float"](value):
        return
    if name.endswith(("_size", "layers")) and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    if "dropout" in name and not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


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
