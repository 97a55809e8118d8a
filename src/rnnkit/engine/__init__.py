"""The engine runs a cell over a whole sequence: one input projection, the time loop, hand-written BPTT.

``run_direction`` is the entry point; :mod:`rnnkit.engine.bptt` documents the contract and
:mod:`rnnkit.engine.resolve` which backend runs.
"""
from .ops import run_bptt
from .reference import run_reference
from .resolve import ENGINE_CHOICES, ENGINES, check_engine, check_torch_kernel, resolve_engine, resolve_step_engine
from .sequence import lengths_mask, reverse_padded, run_direction

__all__ = ["run_bptt", "run_reference", "run_direction", "resolve_engine", "resolve_step_engine",
           "check_engine", "check_torch_kernel", "lengths_mask", "reverse_padded", "ENGINES", "ENGINE_CHOICES"]
