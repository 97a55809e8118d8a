"""The engine runs a cell over a whole sequence: one input projection, the time loop, hand-written BPTT.

``run_direction`` is the entry point; :mod:`rnnkit.engine.bptt` documents the contract.
"""
from .bptt import BPTT, run_bptt
from .modes import GATES, MODES, check_mode, has_cell_state
from .reference import run_reference
from .sequence import ENGINES, lengths_mask, resolve_engine, reverse_padded, run_direction

__all__ = ["BPTT", "run_bptt", "run_reference", "run_direction", "resolve_engine", "lengths_mask",
           "reverse_padded", "GATES", "MODES", "ENGINES", "check_mode", "has_cell_state"]
