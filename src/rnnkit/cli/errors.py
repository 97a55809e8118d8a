"""The one exception type for a command line that can't be used (the data layer has its own, ``DataError``)."""
from __future__ import annotations

from os import PathLike

__all__ = ["OptionError"]


class OptionError(ValueError):
    """A bad option, a bad combination of options, or a command-line argument that can't be used.

    ``OptionError("--beam must be at least 1")`` reads ``command line: --beam must be at least 1``; ``where``
    names the option or the file it concerns instead. The CLI prints it as one line, ``rnnkit: error: ...``.
    """

    def __init__(self, problem: str, where: str | PathLike[str] = "command line") -> None:
        self.problem, self.where = problem, str(where)
        super().__init__(f"{self.where}: {problem}")
