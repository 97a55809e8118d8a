"""The one exception type for a command line that can't be used (the data layer has its own, ``DataError``)."""
from __future__ import annotations

import re
from os import PathLike

__all__ = ["OptionError", "out_of_memory"]


class OptionError(ValueError):
    """A bad option, a bad combination of options, or a command-line argument that can't be used.

    ``OptionError("--beam must be at least 1")`` reads ``command line: --beam must be at least 1``; ``where``
    names the option or the file it concerns instead. The CLI prints it as one line, ``rnnkit: error: ...``.
    """

    def __init__(self, problem: str, where: str | PathLike[str] = "command line") -> None:
        self.problem, self.where = problem, str(where)
        super().__init__(f"{self.where}: {problem}")

    @classmethod
    def of(cls, e: BaseException) -> "OptionError":
        """A layer's or model's refusal of the options they were built with, in the command line's terms."""
        return cls(in_cli_terms(str(e)))


def in_cli_terms(message: str) -> str:
    """A layer's message, which names Python arguments, in the options a command-line user types:
    ``engine='auto' or 'python'`` reads ``--engine auto or python``, ``reset_after=True`` ``--cell gru-torch``."""
    message = re.sub(r"engine='([\w-]+)'((?: or '[\w-]+')*)",
                     lambda m: f"--engine {m.group(1)}" + m.group(2).replace("'", ""), message)
    return message.replace("use reset_after=True for PyTorch's", "--cell gru-torch is PyTorch's")


def out_of_memory(e: BaseException) -> str | None:
    """The one-line message for an allocation that failed (torch's CPU allocator, CUDA's, Python's
    :class:`MemoryError`), or None for another error. Sizes typed too large (``--hidden-size 100000``) end here."""
    text = str(e)
    if not (isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()):
        return None
    size = ""
    if m := re.search(r"allocate (\d+) bytes", text):                      # torch's CPU allocator
        size = f" (it tried to allocate {_bytes(int(m.group(1)))} at once)"
    elif m := re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]?i?B)", text):  # CUDA's
        size = f" (it tried to allocate {m.group(1)} at once)"
    return (f"out of memory{size}: the sizes given need more memory than is free; make the model or the batch "
            f"smaller (e.g. --hidden-size, --embed-size, --layers, --batch-size, --beam)")


def _bytes(n: int) -> str:
    if n < 1000:
        return f"{n:,} bytes"
    size, unit = float(n), "bytes"
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if size < 1000:
            break
    return f"{size:.1f} {unit}"
