"""The regularisers' Bernoulli masks: one draw of torch's generator keys a whole mask, a counter-based hash gives
its bits.

Element ``i`` of a mask (row-major, ``i < 2^32``) is kept where ``hash(i) < p * 2^32``, with the key ``(k0, k1)`` the
two 32-bit halves of one 64-bit draw of torch's default generator on the mask's device::

    hash(i) = mix(mix(i + k0) ^ k1)            (arithmetic mod 2^32)
    mix(x):  x ^= x >> 16;  x *= 0x7feb352d;  x ^= x >> 15;  x *= 0x846ca68b;  x ^= x >> 16

(``mix`` is C. Wellons's lowbias32: a bijection of 32-bit numbers with low avalanche bias.) Why not torch's own
Bernoulli: its CPU generator (a Mersenne twister) makes ~5 ns a number, so drawing the masks was a third of what
the regularisers cost a training step at small shapes. The hash is the same few integer instructions for every
element, vectorized in the compiled extension (``csrc/masks.cpp``): 0.04 ms for a (35, 20, 200) mask on one
thread, against 0.2 ms for 16-bit lanes of torch's generator and 1.3 ms for ``bernoulli_``
(``benchmarks/mask_draw.py``). Seeding torch still fixes every mask, and every engine sees the same ones: they are
drawn before an engine runs. This module's PyTorch twin gives the same bits where the extension isn't built
(drawing a mask never builds it; the twin is ~60x slower) and on a GPU; the tests hold the two equal.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from . import build

_M32 = 0xFFFFFFFF
_MIX = (0x7FEB352D, 0x846CA68B)


def threshold(p: float) -> int:
    """``p`` as the hash's threshold, ``round(p * 2^32)`` in [0, 2^32]: 0 and 2^32 (p = 0 or 1) draw nothing."""
    return min(1 << 32, max(0, round(p * (1 << 32))))


def draw_key(device: torch.device) -> Tensor:
    """A mask's key: one 64-bit draw of torch's default generator on ``device`` (a 0-d int64 tensor there).
    ``torch.compile`` can't trace the in-place ``random_``; there the same draw comes from ``randint``, which on
    the CPU gives it with the sign bit flipped (flipped back: the same key, tested)."""
    if torch.compiler.is_compiling():
        low = -(1 << 63)
        return torch.randint(low, -low - 1, (), dtype=torch.int64, device=device) ^ low
    return torch.empty((), dtype=torch.int64, device=device).random_(-(1 << 63), None)


def dropout(shape, p: float, like: Tensor) -> Tensor:
    """Inverted dropout's mask, like ``like``'s device and dtype: 0 with probability ``p``, else ``1/(1-p)``."""
    return bernoulli(shape, 1.0 - p, like.device, like.dtype, value=1.0 / (1.0 - p))


def bernoulli(shape, p: float, device: torch.device, dtype: torch.dtype, value: float = 1.0) -> Tensor:
    """``value`` with probability ``p`` (resolved to 2^-32), else 0, as a ``dtype`` tensor of ``shape`` (bool: True)."""
    compiling = torch.compiler.is_compiling()
    traced = compiling or torch.jit.is_tracing()                   # (neither sees inside the pybind call)
    shape = tuple(shape if compiling else (int(s) for s in shape))  # (export: sizes stay symbolic)
    t = threshold(p)
    if t in (0, 1 << 32):                                           # p = 0 or 1: nothing to draw
        fill = (True if dtype == torch.bool else value) if t else 0
        return torch.full(shape, fill, dtype=dtype, device=device)
    if not compiling and math.prod(shape) > 1 << 32:               # (a traced program: no guard on N)
        raise ValueError(f"a regulariser's mask has at most 2^32 elements, got {math.prod(shape)} ({shape})")
    key = draw_key(device)
    module = build.loaded() if torch.device(device).type == "cpu" and not traced else None
    if module is not None:
        return module.bernoulli_mask(int(key), list(shape), t, float(value), dtype)
    return _bernoulli_torch(shape, key, t, value, dtype)


def _mul(x: Tensor, c: int) -> Tensor:
    """``x * c mod 2^32`` for ``x < 2^32`` in int64 without overflow: the high half of ``c`` only adds its low bits."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _mix(x: Tensor) -> Tensor:
    x = x ^ (x >> 16)
    x = _mul(x, _MIX[0])
    x = x ^ (x >> 15)
    x = _mul(x, _MIX[1])
    return x ^ (x >> 16)


def _bernoulli_torch(shape: tuple, key: Tensor, threshold: int, value: float, dtype: torch.dtype) -> Tensor:
    """The PyTorch twin of ``csrc/masks.cpp`` (int64 arithmetic kept below 2^63)."""
    k0, k1 = key & _M32, (key >> 32) & _M32                # >> is arithmetic: the mask keeps the low 32 bits
    i = torch.arange(math.prod(shape), dtype=torch.int64, device=key.device)
    keep = (_mix(_mix((i + k0) & _M32) ^ k1) < threshold).view(shape)
    return keep if dtype == torch.bool else keep.to(dtype) * value
