"""Pieces of one time step that both Python BPTT loops share (:mod:`.bptt`, and :mod:`.masked` with recurrent
dropout and zoneout): holding a state past a sequence's end, forward and backward, and the LSTM's gate gradients."""
from __future__ import annotations

import torch
from torch import Tensor


def target(buffer: Tensor, m: Tensor | None) -> Tensor | None:
    """Where a step writes its new state (``out=``): the saved buffer itself when no sequence ends there (one copy
    less per step, on a GPU one launch less), else a fresh tensor that :func:`settle` merges."""
    return buffer if m is None else None


def settle(buffer: Tensor, new: Tensor, old: Tensor, m: Tensor | None) -> None:
    """The state after a step in ``buffer``: already there without a mask; with one, the new state where the
    sequence goes on and the old one past its end."""
    if m is not None:
        buffer.copy_(torch.where(m, new, old))


def split(d: Tensor, m: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Split the gradient of the held state into the part for the new state and the part passed straight back."""
    if m is None:
        return d, None
    return d * m, d * ~m


def carry(d: Tensor, keep: Tensor | None) -> Tensor:
    """The gradient passed to the step before: through the step, plus what a held state passed straight back."""
    return d if keep is None else d + keep


def lstm_gate_grads(out: Tensor, gates: tuple[Tensor, Tensor, Tensor, Tensor], dct: Tensor, dh: Tensor,
                    tc: Tensor, c_prev: Tensor) -> None:
    """The LSTM's pre-activation gradients of one step into ``out`` (N, 4H), from the activated gates
    ``(i, f, g, o)``, ``dC_t``, ``dh_t``, ``tanh(C_t)`` and ``C_{t-1}``."""
    i, f, g, o = gates
    di, df, dg, do = out.chunk(4, 1)
    torch.mul(dct * g, i * (1 - i), out=di)          # da_i = dC_t C~_t σ'(a_i)
    torch.mul(dct * c_prev, f * (1 - f), out=df)     # da_f = dC_t C_{t-1} σ'(a_f)
    torch.mul(dct * i, 1 - g * g, out=dg)            # da_g = dC_t i_t tanh'(a_g)
    torch.mul(dh * tc, o * (1 - o), out=do)          # da_o = dh_t tanh(C_t) σ'(a_o)
