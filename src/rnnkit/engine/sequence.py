"""One direction of one layer over a padded batch: masks from lengths, reversal, engine choice."""
from __future__ import annotations

import warnings
from functools import partial

import torch
from torch import Tensor

from .bptt import run_bptt
from .modes import check_mode
from .reference import run_reference

ENGINES = ("auto", "fused", "python", "reference")
_RUNNERS = {"python": run_bptt, "reference": run_reference}
_fallback_warned: set[str] = set()


def resolve_engine(engine: str, mode: str, x: Tensor) -> str:
    """The engine that will run: ``auto`` takes the first of fused → python that can serve.

    ``fused`` is the C++ loop on the CPU (:mod:`.fused`) and the Python loop replayed from CUDA graphs on a GPU
    (:mod:`.graphed`). Asked for explicitly where it can't serve → an error saying why; ``auto`` falls back to
    ``python`` there, with a one-time warning when the C++ build failed.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine in ("python", "reference"):
        return engine
    from . import fused, graphed
    reason = graphed.unavailable_reason(x) if x.is_cuda else fused.unavailable_reason(mode, x)
    if reason is None:
        return "fused"
    if engine == "fused":
        raise RuntimeError(f"engine='fused' cannot run here: {reason}. Use engine='auto' or 'python'.")
    if reason not in _fallback_warned and fused.warn_on_fallback(reason):
        _fallback_warned.add(reason)
        warnings.warn(f"rnnkit: the fused engine is unavailable ({reason}); using the Python BPTT loop",
                      RuntimeWarning, stacklevel=4)
    return "python"


def lengths_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(T, N, 1)`` bool, ``True`` where step ``t`` is inside sequence ``n``."""
    return (torch.arange(steps, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length, padding stays at the end (its own inverse)."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)
    src = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)    # (T, N)
    return x.gather(0, src.unsqueeze(2).expand_as(x))


def run_direction(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple, *,
                  lengths: Tensor | None = None, reverse: bool = False,
                  engine: str = "auto", checkpoint_every: int | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction of one layer over ``x`` (T, N, I).

    Returns ``(output (T, N, H), h_n (N, H), c_n (N, H) or None)``: outputs past a sequence's end are zero and
    its final state is the one at its last valid step. ``lengths`` is a (N,) integer tensor on ``x``'s device.
    ``checkpoint_every=k`` (fused engine only) saves the states every ``k`` steps for the backward and recomputes
    the rest there: memory ``~N·H·T`` instead of ``6·N·H·T`` floats for the LSTM.
    """
    check_mode(mode)
    name = resolve_engine(engine, mode, x)
    if name == "fused" and x.is_cuda:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every runs in the CPU's compiled loop; on CUDA the fused engine replays "
                             "captured graphs, which keep every step")
        from .graphed import run_graphed
        runner = run_graphed
    elif name == "fused":
        from .fused import run_fused
        runner = partial(run_fused, checkpoint_every=checkpoint_every)
    elif checkpoint_every is not None:
        raise ValueError(f"checkpoint_every needs the fused engine; this run uses the {name!r} engine")
    else:
        runner = _RUNNERS[name]
    mask = None if lengths is None else lengths_mask(lengths, x.shape[0])
    if reverse:
        x = reverse_padded(x, lengths)
    h_seq, h_n, c_n = runner(mode, x, h0, c0, weights, mask)
    if mask is not None:
        h_seq = h_seq * mask
    if reverse:
        h_seq = reverse_padded(h_seq, lengths)
    return h_seq, h_n, c_n
