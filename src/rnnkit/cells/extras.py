"""What the regularised and normalised cells add to one step: recurrent-dropout and zoneout masks, layer norm.

A :class:`Regularisation` travels with one direction of one layer over one sequence. The masks are drawn by the
layer (:mod:`rnnkit.layers.regularisers`, in one documented order) and are plain tensors here, so every engine
runs the same numbers::

    h_mask      (N, P)      recurrent dropout (Gal & Ghahramani 2016): 0 or 1/(1-p), one per sequence and unit,
                            shared over all steps, multiplies h_{t-1} before the recurrent matmul only
    zoneout_h   (T, N, P)   zoneout (Krueger et al. 2016) of h: True where a unit keeps its previous value
                            (training: bool, a byte per unit kept for the backward), the constant p in
                            evaluation (floats); h_t = z * h_{t-1} + (1 - z) * h~_t
    zoneout_c   (T, N, H)   the same for the LSTM's cell C
    ln          the layer norm's gains and biases: (g_ih, b_ih, g_hh, b_hh) (G*H,) each, and (g_c, b_c) (H,)
                for the LSTM (Ba et al. 2016; C_t as haste's LayerNormLSTM)

Layer normalisation here is per gate block: ``LN(v)`` normalises each block of H units of a (N, G*H)
pre-activation over its own H units, then scales and shifts unit by unit (``g``, ``b`` of size G*H). For the RNN
(one block) and the LSTM's cell this is the usual LN over the whole vector.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

LN_EPS = 1e-5


@dataclass(frozen=True)
class Regularisation:
    h_mask: Tensor | None = None
    zoneout_h: Tensor | None = None
    zoneout_c: Tensor | None = None
    ln: tuple[Tensor | None, ...] | None = None

    def at(self, t: int) -> "Regularisation":
        """The one-step view: the zoneout masks of step ``t`` (N, P)."""
        return replace(self, zoneout_h=None if self.zoneout_h is None else self.zoneout_h[t],
                       zoneout_c=None if self.zoneout_c is None else self.zoneout_c[t])

    @property
    def empty(self) -> bool:
        return self.h_mask is None and self.zoneout_h is None and self.zoneout_c is None and self.ln is None


def layer_norm_blocks(v: Tensor, gain: Tensor, bias: Tensor, blocks: int, eps: float = LN_EPS) -> Tensor:
    """``LN(v)`` per gate block: ``v`` (N, G*H) normalised over each block's H units, then ``* gain + bias``."""
    n = v.shape[0]
    w = v.reshape(n, blocks, -1)
    mu = w.mean(-1, keepdim=True)
    var = ((w - mu) ** 2).mean(-1, keepdim=True)
    return ((w - mu) / torch.sqrt(var + eps)).reshape(n, -1) * gain + bias


def zone(new: Tensor, prev: Tensor, keep: Tensor | None) -> Tensor:
    """Zoneout: ``keep * prev + (1 - keep) * new`` (``new`` unchanged without a mask; a bool mask picks)."""
    if keep is None:
        return new
    return torch.where(keep, prev, new) if keep.dtype == torch.bool else torch.lerp(new, prev, keep)


def as_weights(mask: Tensor | None, like: Tensor) -> Tensor | None:
    """A zoneout mask as ``like``'s floats (training's bools become 0 and 1)."""
    return mask if mask is None or mask.dtype == like.dtype else mask.to(like.dtype)


def add_bias(v: Tensor, bias: Tensor | None) -> Tensor:
    return v if bias is None else v + bias
