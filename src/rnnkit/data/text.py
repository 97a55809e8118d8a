"""Reading a corpus file as text, with errors that point at the file.

Corpora are read as bytes and decoded strictly as UTF-8, so a wrong encoding
fails loudly (with the byte offset of the first bad byte) instead of being
silently mangled into replacement characters.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from .errors import DataError, Source

__all__ = ["decode_text", "read_text"]


def decode_text(data: bytes, source: Source = None) -> str:
    """Decode ``data`` as UTF-8; reject bad bytes and empty/whitespace-only text. A byte-order mark at the start
    (Windows editors write one) is not text and is dropped, as the TSV/CSV loader does."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start} "
            f"({err.reason}); convert the file to UTF-8",
            source,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        what = "empty" if not text else "whitespace-only"
        raise DataError(f"the file is {what}; a corpus needs some text", source)
    return text


def read_text(path: str | PathLike[str]) -> str:
    """Read a whole UTF-8 text file (missing, unreadable, non-UTF-8 or empty: DataError)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a text file", path) from None
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror or err})", path) from None
    return decode_text(data, path)
