"""The ``rnnkit`` console script. PyTorch takes the first seconds to load; Ctrl-C then ends in one line too.

Only the standard library is imported before the ``try`` (the ``rnnkit`` package loads its classes lazily)."""
from __future__ import annotations

import sys


def main() -> int:
    try:
        from .main import main as run_command
    except KeyboardInterrupt:
        print("rnnkit: interrupted while starting; nothing was done", file=sys.stderr)
        return 130
    return run_command()
