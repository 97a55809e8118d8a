"""The one exception type of the data layer.

Bad input (a missing or non-UTF-8 file, a corpus too short to batch, an unknown
symbol) is a user error, not a bug, so it is reported as a :class:`DataError`
whose message says what is wrong *and* which file it is about, instead of a bare
traceback from deep inside the library.
"""

from __future__ import annotations

from os import PathLike
from typing import Union

__all__ = ["DataError", "Source"]

#: What may name a file in an error message: a path, a label, or nothing.
Source = Union[str, "PathLike[str]", None]


class DataError(ValueError):
    """Bad data: the message names the problem and, when known, the file.

    ``DataError("not UTF-8", source="a.txt")`` reads ``a.txt: not UTF-8``.
    """

    def __init__(self, problem: str, source: Source = None) -> None:
        self.problem = problem
        self.source = None if source is None else str(source)
        super().__init__(problem if self.source is None else f"{self.source}: {problem}")
