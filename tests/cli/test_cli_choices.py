"""Every command that takes a cell or an engine offers the one shared list: ``CELL_NAMES`` and ``ENGINES``
(``gradients`` offers ``SEQUENTIAL_NAMES``: it measures through the recurrent weight, which the minimal cells lack)."""
import argparse

from rnnkit.cells.spec import CELL_NAMES, SEQUENTIAL_NAMES
from rnnkit.cli.main import make_parser
from rnnkit.engine.resolve import ENGINES


def _parsers(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_cell_and_engine_choices_are_the_shared_lists():
    seen = {"cell": [], "engine": []}
    for path, parser in _parsers(make_parser()):
        for action in parser._actions:
            if action.dest in ("cell", "cells"):
                want = SEQUENTIAL_NAMES if path == ("gradients",) else CELL_NAMES
                assert tuple(action.choices) == want, path
                seen["cell"].append(" ".join(path))
            if action.dest == "engine" and action.choices is not None:
                assert tuple(action.choices) == ENGINES, path
                seen["engine"].append(" ".join(path))
    for command in ("train lm", "train classify", "train seq2seq", "train caption", "experiment", "gradients"):
        assert command in seen["cell"] and command in seen["engine"], command
