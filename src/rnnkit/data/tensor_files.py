"""Tensors from a file a user names (weights to start from, a resume state), read without running code from it.

``.safetensors`` files are read by safetensors; anything else by ``torch.load(weights_only=True)``, which refuses
every object but tensors and plain values instead of unpickling it. Either way a file that can't be read is a
:class:`DataError` that names the file and says which of the two it is: refused (it holds other objects, never
loaded) or unreadable (truncated, corrupt, not a tensor file at all).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from .errors import DataError

__all__ = ["first_line", "read_tensors"]


def first_line(e: BaseException) -> str:
    """An exception's first line: enough to say why, without torch's multi-paragraph advice."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _why_unreadable(e: BaseException) -> str:
    """Why torch or safetensors couldn't read a file, in a line. torch's weights-only refusal opens with advice to
    load the file with ``weights_only=False`` (which would run whatever code it holds); only its reason is kept."""
    text = str(e)
    if "Weights only load failed" in text:
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines() if "WeightsUnpickler error:" \
            in text else []
        return f"not a torch tensor file: {reason[0]}" if reason else "not a torch tensor file"
    return first_line(e)


def read_tensors(path: str | Path, what: str, mmap: bool = False) -> Any:
    """The content of ``path`` (a dict of tensors for safetensors; tensors and plain values for a torch file).
    ``what`` names the kind of file expected, for the message (``"an rnnkit resume file"``). ``mmap``: a torch
    file's tensors are mapped, not read (for a caller that wants its plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file (expected {what})", path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except MemoryError:
        raise
    except Exception as e:              # torch and safetensors raise many types for truncated or foreign files
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e):   # refused, never run
            raise DataError(f"not {what} (it holds something other than tensors and plain values, which is never "
                            f"loaded)", path) from None
        raise DataError(f"corrupt or not {what} (unreadable: {_why_unreadable(e)})", path) from None
