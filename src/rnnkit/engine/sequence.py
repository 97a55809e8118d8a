"""One direction of one layer over a padded batch: masks from lengths, reversal, the chosen backend."""
from __future__ import annotations

import numbers
from functools import partial

import torch
from torch import Tensor

from ..cells.spec import Recurrence, recurrence
from .ops import run_bptt
from .reference import run_reference
from .resolve import resolve_engine


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


def needs_of(reg) -> frozenset[str]:
    """What a :class:`~rnnkit.cells.extras.Regularisation` asks of an engine (see :func:`.resolve.resolve_engine`)."""
    if reg is None:
        return frozenset()
    return frozenset(name for name, on in (("recurrent_dropout", reg.h_mask is not None),
                                           ("zoneout", reg.zoneout_h is not None or reg.zoneout_c is not None),
                                           ("layer_norm", reg.ln is not None)) if on)


def _runner(name: str, checkpoint_every: int | None):
    """The loop that runs backend ``name`` (resolved, see :mod:`.resolve`) over one direction."""
    if checkpoint_every is not None and (not isinstance(checkpoint_every, numbers.Integral)
                                         or isinstance(checkpoint_every, bool) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer number of steps (or None), got "
                         f"{checkpoint_every!r}")
    if checkpoint_every is not None and name != "compiled":
        where = "on CUDA the cuda-graph engine replays captured graphs, which keep every step" \
            if name == "cuda-graph" else f"this run uses the {name!r} engine"
        raise ValueError(f"checkpoint_every needs the compiled engine (the CPU's C++ loop); {where}")
    if name == "compiled":
        from .fused import run_fused
        return partial(run_fused, checkpoint_every=None if checkpoint_every is None else int(checkpoint_every))
    if name == "cuda-graph":
        from .graphed import run_graphed
        return run_graphed
    if name == "torch":
        raise ValueError("engine='torch' runs a whole stack through torch.nn's module; use an rnnkit layer "
                         "(rnnkit.LSTM(..., engine='torch')) rather than run_direction")
    return {"python": run_bptt, "autograd": run_reference}[name]


def run_direction(cell: Recurrence | str, x: Tensor, h0: Tensor, c0: Tensor | None, weights: tuple, *,
                  lengths: Tensor | None = None, reverse: bool = False,
                  engine: str = "auto", checkpoint_every: int | None = None,
                  reg=None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction of one layer of ``cell`` (a :class:`~rnnkit.cells.spec.Recurrence` or its name) over
    ``x`` (T, N, I). ``weights`` is ``(weight_ih, weight_hh, bias_ih, bias_hh)``, and ``weight_hr`` fifth for an
    LSTM that projects its state (``proj_size``).

    Returns ``(output (T, N, H), h_n (N, H), c_n (N, H) or None)``: outputs past a sequence's end are zero and
    its final state is the one at its last valid step. ``lengths`` is a (N,) integer tensor on ``x``'s device.
    ``checkpoint_every=k`` (compiled engine only) saves the states every ``k`` steps for the backward and
    recomputes the rest there: memory ``~N·H·T`` instead of ``6·N·H·T`` floats for the LSTM.
    ``reg``: recurrent-dropout and zoneout masks and layer norm (:class:`rnnkit.cells.extras.Regularisation`;
    the zoneout masks are indexed by the step of this direction's own order, reversed ones included).
    """
    cell = recurrence(cell)
    reg = None if reg is None or reg.empty else reg
    runner = _runner(resolve_engine(engine, cell, x, projected=len(weights) > 4, needs=needs_of(reg)),
                     checkpoint_every)
    if reg is not None:
        runner = partial(runner, reg=reg)
    mask = None if lengths is None else lengths_mask(lengths, x.shape[0])
    if reverse:
        x = reverse_padded(x, lengths)
    h_seq, h_n, c_n = runner(cell, x, h0, c0, weights, mask)
    if mask is not None:
        h_seq = h_seq * mask
    if reverse:
        h_seq = reverse_padded(h_seq, lengths)
    return h_seq, h_n, c_n
