"""Decoding strategies: sampling (greedy, temperature, top-k, top-p); greedy and beam search (beam.py)."""
from .sampling import filter_logits, sample_next
from .generate import generate
from .beam import Hypothesis, beam_search, greedy_search, length_penalty, search

__all__ = ["Hypothesis", "beam_search", "filter_logits", "generate", "greedy_search", "length_penalty", "sample_next",
           "search"]
