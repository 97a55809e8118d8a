"""The ``rnnkit`` console script. PyTorch and the commands take the first seconds to load; Ctrl-C then ends in one
line too (while PyTorch loads, the package's ``__init__`` says it; afterwards, this ``try``)."""
from __future__ import annotations

import sys

from .. import _INTERRUPTED_WHILE_STARTING


def main() -> int:
    try:
        from .main import main as run_command
    except KeyboardInterrupt:
        print(_INTERRUPTED_WHILE_STARTING, file=sys.stderr)
        return 130
    return run_command()
