"""Every command that takes a cell or an engine offers the one shared list: ``CELL_NAMES`` and ``ENGINES``
(``gradients`` offers ``SEQUENTIAL_NAMES``: it measures through the recurrent weight, which the minimal cells lack)."""
from rnnkit.cells.spec import CELL_NAMES, SEQUENTIAL_NAMES
from rnnkit.cli.main import make_parser
from rnnkit.engine.resolve import ENGINES

from cli_parsers import all_parsers


def test_cell_and_engine_choices_are_the_shared_lists():
    seen = {"cell": [], "engine": []}
    for path, parser in all_parsers(make_parser()):
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
