"""Kept for callers of ``rnnkit.cli.runs.load_lm``: run loading lives in :mod:`rnnkit.tasks` (one ``load_run`` per
task); import :func:`rnnkit.tasks.language_modeling.load_run` instead."""
from ..tasks.language_modeling import load_run as load_lm

__all__ = ["load_lm"]
