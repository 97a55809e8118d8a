"""Holding out the tail of a single text as the validation split.

A contiguous tail (not random lines) keeps the validation text unseen as a
whole, as nanoGPT does for tiny shakespeare (first 90% train, last 10% valid).
"""

from __future__ import annotations

from .errors import DataError, Source

__all__ = ["holdout_tail"]


def holdout_tail(
    text: str, valid_fraction: float = 0.1, source: Source = None
) -> tuple[str, str]:
    """Split ``text`` into ``(train, valid)``: ``train = text[:int(n * (1 - f))]``."""
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"valid_fraction must be in (0, 1), got {valid_fraction}", source)
    cut = int(len(text) * (1.0 - valid_fraction))
    if cut == 0 or cut == len(text):
        raise DataError(
            f"text of {len(text)} characters is too short to hold out "
            f"{valid_fraction:.0%} for validation",
            source,
        )
    return text[:cut], text[cut:]
