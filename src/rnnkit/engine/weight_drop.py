"""Weight drop (DropConnect on ``weight_hh``): ``W * m``, ``m`` 0 or ``1/(1-p)``, one mask per forward call, the
gradient ``dW * m`` reaching the raw weight.

The mask is :mod:`.masks`'s: one draw of torch's generator keys it, a counter-based hash gives its bits. On the CPU
with the extension built, the product is made straight from the hash (``csrc/masks.cpp``'s ``masked_scale``) and
the mask never exists: the backward remakes its bits from the key. The products come from the engine's buffer
pool. Before, the mask, the dropped weight and its gradient were three fresh 0.6 MB tensors per layer of a
(35, 20, 200) LSTM step, whose pages the kernel faulted in again every step: weight drop alone took 1.09-1.12x
the plain step there, 1.02-1.03x now (``benchmarks/regularised_ab.py``; BENCHMARKS.md, "Where the time went").
Elsewhere (a GPU, no extension, tracing, torch.func) it is ``W * mask`` with :func:`.masks.bernoulli`'s mask: the
same bits, the same numbers.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import build, masks
from .ops import untraced


class _DropConnect(torch.autograd.Function):
    """``W * m`` with ``m`` made from ``(key, threshold, scale)`` in the forward and again in the backward."""

    @staticmethod
    def forward(ctx, weight: Tensor, key: int, threshold: int, scale: float) -> Tensor:
        ctx.mask = (key, threshold, scale)
        return build.loaded().masked_scale(weight.contiguous(), key, threshold, scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return build.loaded().masked_scale(grad.contiguous(), *ctx.mask), None, None, None


def _fused(weight: Tensor) -> bool:
    """Whether ``masked_scale`` can serve: a CPU float tensor, the extension loaded, nothing tracing."""
    return (weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.float64)
            and build.loaded() is not None and untraced((weight,)))


def drop_weight(weight: Tensor, p: float) -> Tensor:
    """``weight`` with each element zeroed with probability ``p`` and the rest scaled by ``1/(1-p)``: the same
    generator draw and the same bits as ``weight * masks.dropout(weight.shape, p, weight)``."""
    keep, scale = 1.0 - p, 1.0 / (1.0 - p)
    threshold = masks.threshold(keep)
    if threshold in (0, 1 << 32) or not _fused(weight):
        return weight * masks.dropout(weight.shape, p, weight)
    return _DropConnect.apply(weight, int(masks.draw_key(weight.device)), threshold, scale)
