"""Input checks for the recurrent layers: every bad input gets a message naming what was expected and what came."""
from __future__ import annotations

import numbers
import warnings
from typing import Sequence

import torch
from torch import Tensor


class InputError(ValueError, RuntimeError):
    """A wrong shape, size, device or length: catchable as ``ValueError`` (rnnkit's documented type) and as
    ``RuntimeError`` (what ``torch.nn``'s recurrent layers raise), so existing ``except`` clauses keep working."""


class InputTypeError(TypeError, RuntimeError):
    """A wrong dtype or type: ``TypeError`` for rnnkit, ``RuntimeError`` as ``torch.nn`` raises it."""


def check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_dropout(value) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {value!r}")


def warn_unused_dropout(dropout: float, num_layers: int) -> None:
    """torch.nn's warning, word for word: ``dropout`` acts between layers, so a single layer has none."""
    if dropout > 0 and num_layers == 1:
        warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and "
                      f"num_layers={num_layers}", UserWarning, stacklevel=4)


def check_no_projection(kwargs: dict) -> None:
    """torch.nn's refusal of ``proj_size`` for RNN and GRU (which have no projected state), word for word."""
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


def check_input(name: str, x, input_size: int, like: Tensor, shape: tuple[int, ...] | None = None) -> None:
    """``x`` is the time-major batched input: rank 3, the right features, dtype, device. ``shape`` is the
    input's shape as the caller gave it (before unsqueezing or transposing), for the messages."""
    if not isinstance(x, Tensor):
        raise InputTypeError(f"{name} expects a Tensor or PackedSequence input, got {type(x).__name__}")
    shape = tuple(x.shape) if shape is None else shape
    if x.dim() != 3:
        raise InputError(f"{name} expects a 3-D input (seq_len, batch, {input_size}) or (batch, seq_len, "
                         f"{input_size}) with batch_first=True, or 2-D unbatched; got shape {shape}")
    if x.shape[2] != input_size:
        raise InputError(f"{name} expects input_size={input_size} features, got {x.shape[2]} "
                         f"(input shape {shape})")
    if x.shape[0] == 0:
        raise InputError(f"{name} got an input of no steps, shape {shape}: it needs at least one step (an empty "
                         f"batch of sequences is fine)")
    if not x.dtype.is_floating_point:
        raise InputTypeError(f"{name}: input dtype {x.dtype} is not floating point; convert it with "
                             f".to({like.dtype}) (token ids go through an nn.Embedding first)")
    if x.dtype != like.dtype:
        raise InputTypeError(f"{name}: input dtype {x.dtype} does not match the parameters' dtype {like.dtype}; "
                        f"convert one with .to({like.dtype}) or module.to({x.dtype})")
    if x.device != like.device:
        raise InputError(f"{name}: input is on {x.device} but the parameters are on {like.device}")


def check_state(name: str, h, expected: tuple[int, ...], like: Tensor, what: str = "hx") -> None:
    if not isinstance(h, Tensor):
        raise InputTypeError(f"{name}: {what} must be a Tensor, got {type(h).__name__}")
    if tuple(h.shape) != expected:
        raise InputError(f"{name}: {what} must have shape {expected} (num_layers * num_directions, batch, "
                         f"hidden_size), got {tuple(h.shape)}")
    if h.dtype != like.dtype:
        raise InputTypeError(f"{name}: {what} dtype {h.dtype} does not match the input's dtype {like.dtype}")
    if h.device != like.device:
        raise InputError(f"{name}: {what} is on {h.device} but the input is on {like.device}")


def check_lengths(name: str, lengths: Tensor | Sequence[int], batch: int, steps: int, device) -> Tensor:
    """``lengths`` as an int64 tensor on ``device``: one per sequence, each in ``1..steps``."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise InputTypeError(f"{name}: lengths must be integers, got a tensor of dtype {lengths.dtype}")
        values = lengths.reshape(-1)
    else:
        items = list(lengths)
        bad = [v for v in items if not isinstance(v, numbers.Integral) or isinstance(v, bool)]
        if bad:
            raise InputTypeError(f"{name}: lengths must be integers, got {bad[0]!r}")
        values = torch.tensor([int(v) for v in items], dtype=torch.long)
    if lengths is not None and isinstance(lengths, Tensor) and lengths.dim() != 1:
        raise InputError(f"{name}: lengths must be 1-D (one per sequence), got shape {tuple(lengths.shape)}")
    if values.numel() != batch:
        raise InputError(f"{name}: got {values.numel()} lengths for a batch of {batch} sequences")
    if torch.compiler.is_compiling() or batch == 0:   # symbolic values (torch.compile / export), or none
        return values.to(device=device, dtype=torch.long)
    lo, hi = int(values.min()), int(values.max())
    if lo < 1 or hi > steps:
        raise InputError(f"{name}: lengths must be in 1..{steps} (the input's sequence length); got values from "
                         f"{lo} to {hi}" + (" (empty sequences are not allowed)" if lo < 1 else ""))
    return values.to(device=device, dtype=torch.long)


def graph_zero(x: Tensor, module: torch.nn.Module) -> Tensor:
    """A zero that depends on ``x`` and ``module``'s parameters: added to an empty batch's outputs it keeps them in
    autograd's graph, as torch.nn's are (a training loop's ``backward()`` then gives zero gradients, no error)."""
    total = x.sum()
    for p in module.parameters():
        total = total + p.sum()
    return total * 0
