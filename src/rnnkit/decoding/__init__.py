"""Decoding strategies: sampling (greedy, temperature, top-k, top-p); greedy and beam search (beam.py)."""
from .sampling import filter_logits, sample_next

__all__ = ["filter_logits", "sample_next"]
from .generate import generate

__all__ += ["generate"]
from .beam import Hypothesis, beam_search, greedy_search, length_penalty, search

__all__ += ["Hypothesis", "beam_search", "greedy_search", "length_penalty", "search"]
