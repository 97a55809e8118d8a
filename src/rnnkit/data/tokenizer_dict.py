"""Rebuilding any of rnnkit's tokenizers from the dict it saved (a run's ``config.json`` carries one).

It sits above every tokenizer module, so that each of them can build on :class:`~rnnkit.data.tokenizers.Tokenizer`
without a cycle: adding a tokenizer kind is its module and one entry in :data:`TOKENIZER_TYPES`.
"""
from __future__ import annotations

from typing import Any, Mapping

from .bpe import BPETokenizer
from .errors import DataError, Source
from .tokenizers import CharTokenizer, Tokenizer, WordTokenizer

TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {t.kind: t for t in (CharTokenizer, WordTokenizer, BPETokenizer)}


def tokenizer_from_dict(d: Mapping[str, Any], source: Source = None) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict`, dispatching on ``d["type"]``."""
    if not isinstance(d, Mapping) or d.get("type") not in TOKENIZER_TYPES:
        got = d.get("type") if isinstance(d, Mapping) else type(d).__name__
        raise DataError(f"unknown tokenizer type {got!r}; expected one of {sorted(TOKENIZER_TYPES)}", source)
    return TOKENIZER_TYPES[d["type"]].from_dict(d, source)
