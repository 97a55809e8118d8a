"""Decoding strategies: sampling (greedy, temperature, top-k, top-p)."""
from .sampling import filter_logits, sample_next

__all__ = ["filter_logits", "sample_next"]
from .generate import generate

__all__ += ["generate"]
