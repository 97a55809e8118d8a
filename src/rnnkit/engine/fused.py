"""The compiled engine: the time loop in C++ (not yet built in this version of rnnkit)."""
from __future__ import annotations

from torch import Tensor


def unavailable_reason(mode: str, x: Tensor) -> str | None:
    """Why the compiled loop can't run ``mode`` on ``x``, or ``None`` when it can."""
    return "the compiled C++ loop is not part of this build"


def warn_on_fallback(reason: str) -> bool:
    """Whether ``auto`` should warn when it falls back for this reason (not when nothing was ever built)."""
    return False


def run_fused(mode, x, h0, c0, weights, mask):
    raise RuntimeError(unavailable_reason(mode, x))
